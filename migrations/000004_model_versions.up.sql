-- Model versions, numbered per model by the server, and their artifacts.

ALTER TABLE models ADD COLUMN next_version integer NOT NULL DEFAULT 1 CHECK (next_version > 0);

CREATE TABLE model_versions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id       bigint NOT NULL REFERENCES models (id),
    version        integer NOT NULL CHECK (version > 0),
    status         text NOT NULL CHECK (status IN ('draft', 'ready')),
    kind           text NOT NULL CHECK (kind IN ('model', 'batch_predictions')),
    framework      text NOT NULL DEFAULT '',
    flavor         text NOT NULL DEFAULT '',
    description    text NOT NULL DEFAULT '',
    params         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    tags           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tags) = 'object'),
    source         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(source) = 'object'),
    links          jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(links) = 'array'),
    -- objects of this version live under this prefix of the bucket
    storage_prefix text NOT NULL UNIQUE,
    created_by     bigint REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    ready_at       timestamptz,
    -- a draft not finalized by then is deleted, and its objects reclaimed
    expires_at     timestamptz,
    UNIQUE (model_id, version),
    CHECK ((status = 'ready') = (ready_at IS NOT NULL)),
    CHECK ((status = 'draft') = (expires_at IS NOT NULL))
);
CREATE INDEX model_versions_draft_expiry_idx ON model_versions (expires_at) WHERE status = 'draft';

CREATE TABLE model_artifacts (
    version_id   bigint NOT NULL REFERENCES model_versions (id),
    path         text NOT NULL CHECK (octet_length(path) BETWEEN 1 AND 1024),
    size         bigint NOT NULL CHECK (size >= 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL,
    object_key   text NOT NULL UNIQUE,
    -- when the object arrived; NULL while a draft waits for it
    uploaded_at  timestamptz,
    -- size and sha256 were computed by Slipway from the bytes (an upload
    -- through Slipway), not only declared (an upload to a presigned URL)
    verified     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (version_id, path)
);

-- Artifacts of a ready version are immutable, whatever path the statement
-- comes from.
CREATE FUNCTION model_artifacts_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM model_versions WHERE id = OLD.version_id AND status = 'ready') THEN
        RAISE EXCEPTION 'artifacts of a ready model version are immutable: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER model_artifacts_immutable
    BEFORE UPDATE OR DELETE ON model_artifacts
    FOR EACH ROW EXECUTE FUNCTION model_artifacts_immutable();
