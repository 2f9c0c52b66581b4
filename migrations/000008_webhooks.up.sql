-- Webhooks: endpoints admins register, a message per event and endpoint,
-- and every delivery attempt.

CREATE TABLE webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- the event types it wants; empty: all
    event_types     text[] NOT NULL DEFAULT '{}',
    -- the models it cares about; empty: all
    model_ids       bigint[] NOT NULL DEFAULT '{}',
    -- signing secrets, sealed with SLIPWAY_WEBHOOK_KEY (AES-GCM); the
    -- previous one signs too until previous_until (a rotation)
    secret          bytea NOT NULL,
    previous_secret bytea,
    previous_until  timestamptz,
    enabled         boolean NOT NULL DEFAULT true,
    -- why it was disabled (by an admin, a 410, or failing for too long)
    disabled_reason text NOT NULL DEFAULT '',
    disabled_at     timestamptz,
    -- the first failed attempt since the last delivery
    failing_since   timestamptz,
    created_by      bigint REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((previous_secret IS NULL) = (previous_until IS NULL)),
    CHECK (enabled = (disabled_at IS NULL))
);

-- One message per event and endpoint: its webhook-id is stable across
-- the attempts and redeliveries of that message.
CREATE TABLE webhook_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id          text NOT NULL UNIQUE,
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id),
    -- the event it tells of; NULL for a test message
    event_id        bigint REFERENCES events (id),
    event_type      text NOT NULL,
    -- what a test message says (events carry their own payload)
    payload         jsonb,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    -- a worker that claimed the message holds it until then
    lease_until     timestamptz,
    last_status     integer,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (endpoint_id, event_id),
    CHECK ((event_id IS NULL) = (payload IS NOT NULL)),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, id);

-- Every attempt, as sent and as answered (secrets never: the signature
-- header is kept, the secret is not).
CREATE TABLE webhook_attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       bigint NOT NULL REFERENCES webhook_messages (id),
    endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints (id),
    attempt          integer NOT NULL CHECK (attempt > 0),
    url              text NOT NULL,
    request_headers  jsonb NOT NULL,
    request_body     bytea NOT NULL,
    response_status  integer,
    -- the first 4 KiB of the answer
    response_body    text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    delivered        boolean NOT NULL,
    latency_ms       integer NOT NULL CHECK (latency_ms >= 0),
    started_at       timestamptz NOT NULL
);
CREATE INDEX webhook_attempts_message_idx ON webhook_attempts (message_id, id);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id);
CREATE TRIGGER webhook_attempts_immutable BEFORE UPDATE OR DELETE ON webhook_attempts
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();
