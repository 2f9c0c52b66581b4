-- Models: named, never deleted (archived instead), so a name is never
-- reused for another model.
CREATE TABLE models (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    owner       text NOT NULL DEFAULT '' CHECK (length(owner) <= 128),
    tags        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tags) = 'object'),
    created_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    -- bumped by every change; the ETag of optimistic concurrency
    revision    bigint NOT NULL DEFAULT 1
);
CREATE INDEX models_tags_idx ON models USING gin (tags jsonb_path_ops);
CREATE INDEX models_live_name_idx ON models (name) WHERE archived_at IS NULL;
