-- Failed sign-ins, to slow down password guessing: after too many recent
-- failures for one user name, sign-in for that name is refused for a while.
CREATE TABLE login_failures (
    user_name   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    remote_addr text NOT NULL DEFAULT ''
);
CREATE INDEX login_failures_user_at_idx ON login_failures (user_name, at);
