-- Idempotency keys of POST requests: the first answer is kept and given
-- again to a retry with the same key and body.
CREATE TABLE idempotency_keys (
    user_id      bigint NOT NULL REFERENCES users (id),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    method       text NOT NULL,
    path         text NOT NULL,
    -- digest of what the request asked (its body, canonical for uploads);
    -- NULL while the first request runs, for uploads whose digest is known
    -- only at the end
    fingerprint  text,
    status       integer,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
