-- Evaluation reports, stages, promotion policies, promotion requests and
-- reviews, and the outbox of events.

-- A stage or a promotion names a version of its own model: (model_id, id)
-- is what they refer to.
ALTER TABLE model_versions ADD CONSTRAINT model_versions_model_id_id_key UNIQUE (model_id, id);

-- Evidence is never changed or deleted, whatever path the statement comes
-- from.
CREATE FUNCTION evidence_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- An evaluation report: one suite's evidence about one model version, on
-- one evaluation dataset version. The raw bytes are in the object store;
-- values are normalised into evaluation_metrics and evaluation_tests.
CREATE TABLE evaluation_reports (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id           bigint NOT NULL,
    model_version_id   bigint NOT NULL,
    suite              text NOT NULL CHECK (suite ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
    format             text NOT NULL CHECK (format IN ('slipway', 'reclist-v0', 'reclist-v2')),
    producer           text NOT NULL DEFAULT '' CHECK (length(producer) <= 256),
    dataset_version_id bigint REFERENCES dataset_versions (id),
    object_key         text NOT NULL UNIQUE,
    sha256             text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size               bigint NOT NULL CHECK (size >= 0),
    content_type       text NOT NULL,
    meta               jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(meta) = 'object'),
    metric_count       integer NOT NULL CHECK (metric_count >= 0),
    test_count         integer NOT NULL CHECK (test_count >= 0),
    tests_failed       integer NOT NULL CHECK (tests_failed BETWEEN 0 AND test_count),
    created_by         bigint REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (model_id, model_version_id) REFERENCES model_versions (model_id, id)
);
CREATE INDEX evaluation_reports_version_idx ON evaluation_reports (model_version_id, suite, id);

CREATE TABLE evaluation_metrics (
    report_id bigint NOT NULL REFERENCES evaluation_reports (id),
    key       text NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 1024),
    test      text NOT NULL,
    path      text NOT NULL,
    -- NaN and ±Infinity are kept as reported: they never pass a rule
    value     double precision NOT NULL,
    ord       integer NOT NULL,
    PRIMARY KEY (report_id, key)
);

CREATE TABLE evaluation_tests (
    report_id bigint NOT NULL REFERENCES evaluation_reports (id),
    name      text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 512),
    passed    boolean NOT NULL,
    message   text NOT NULL DEFAULT '',
    ord       integer NOT NULL,
    PRIMARY KEY (report_id, name)
);

CREATE TRIGGER evaluation_reports_immutable BEFORE UPDATE OR DELETE ON evaluation_reports
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();
CREATE TRIGGER evaluation_metrics_immutable BEFORE UPDATE OR DELETE ON evaluation_metrics
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();
CREATE TRIGGER evaluation_tests_immutable BEFORE UPDATE OR DELETE ON evaluation_tests
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();

-- A stage: a named pointer of a model to at most one of its versions.
CREATE TABLE stages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id    bigint NOT NULL REFERENCES models (id),
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    version_id  bigint,
    -- when version_id took the stage
    since       timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, name),
    FOREIGN KEY (model_id, version_id) REFERENCES model_versions (model_id, id),
    CHECK ((version_id IS NULL) = (since IS NULL))
);

-- Every model has staging and production, whatever path created it.
CREATE FUNCTION models_default_stages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stages (model_id, name, description) VALUES
        (NEW.id, 'staging', 'Pre-production: integration tests, shadow traffic.'),
        (NEW.id, 'production', 'What the serving layer loads.');
    RETURN NEW;
END
$$;
CREATE TRIGGER models_default_stages AFTER INSERT ON models
    FOR EACH ROW EXECUTE FUNCTION models_default_stages();
INSERT INTO stages (model_id, name, description)
SELECT id, s.name, s.description FROM models,
    (VALUES ('staging', 'Pre-production: integration tests, shadow traffic.'),
            ('production', 'What the serving layer loads.')) AS s(name, description);

-- Promotion policies: per stage, versioned; a revision is never changed.
CREATE TABLE promotion_policies (
    stage_id   bigint NOT NULL REFERENCES stages (id),
    revision   integer NOT NULL CHECK (revision > 0),
    document   jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    comment    text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000),
    created_by bigint REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stage_id, revision)
);
CREATE TRIGGER promotion_policies_immutable BEFORE UPDATE OR DELETE ON promotion_policies
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();

-- Promotion requests: "move stage S of model M to version V".
CREATE TABLE promotions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id            bigint NOT NULL REFERENCES models (id),
    version_id          bigint NOT NULL,
    stage_id            bigint NOT NULL REFERENCES stages (id),
    status              text NOT NULL CHECK (status IN ('pending_approval', 'promoted', 'rejected', 'cancelled')),
    reason              text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    -- an admin's override: failing rules were skipped, and are recorded
    override            boolean NOT NULL DEFAULT false,
    policy_revision     integer,
    approvals_required  integer NOT NULL DEFAULT 0 CHECK (approvals_required >= 0),
    -- the holder of the stage at the last evaluation, and its rule results
    champion_version_id bigint,
    rules               jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rules) = 'array'),
    requested_by        bigint REFERENCES users (id),
    requested_by_name   text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz,
    decided_by_name     text,
    decision_message    text NOT NULL DEFAULT '',
    FOREIGN KEY (model_id, version_id) REFERENCES model_versions (model_id, id),
    FOREIGN KEY (model_id, champion_version_id) REFERENCES model_versions (model_id, id),
    CHECK ((status = 'pending_approval') = (decided_at IS NULL))
);
CREATE INDEX promotions_open_idx ON promotions (id) WHERE status = 'pending_approval';
CREATE INDEX promotions_model_idx ON promotions (model_id, id);
CREATE INDEX promotions_version_idx ON promotions (version_id, id);

-- Each evaluation of a request's policy: at the request, and again when
-- the last approval arrives (against the champion of that moment).
CREATE TABLE promotion_evaluations (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promotion_id        bigint NOT NULL REFERENCES promotions (id),
    decision            text NOT NULL CHECK (decision IN ('promoted', 'pending_approval', 'rejected')),
    policy_revision     integer,
    champion_version_id bigint REFERENCES model_versions (id),
    rules               jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'array'),
    evaluated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX promotion_evaluations_promotion_idx ON promotion_evaluations (promotion_id, id);
CREATE TRIGGER promotion_evaluations_immutable BEFORE UPDATE OR DELETE ON promotion_evaluations
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();

-- One review per reviewer and request: a second submission counts once.
CREATE TABLE promotion_reviews (
    promotion_id bigint NOT NULL REFERENCES promotions (id),
    reviewer_id  bigint NOT NULL REFERENCES users (id),
    decision     text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment      text NOT NULL DEFAULT '' CHECK (length(comment) <= 10000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (promotion_id, reviewer_id)
);
CREATE TRIGGER promotion_reviews_immutable BEFORE UPDATE OR DELETE ON promotion_reviews
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();

-- Every move of every stage: "what held production at T" is a query.
CREATE TABLE stage_moves (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stage_id            bigint NOT NULL REFERENCES stages (id),
    model_id            bigint NOT NULL,
    version_id          bigint,
    previous_version_id bigint,
    promotion_id        bigint REFERENCES promotions (id),
    reason              text NOT NULL DEFAULT '',
    override            boolean NOT NULL DEFAULT false,
    moved_by_name       text NOT NULL,
    moved_at            timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (model_id, version_id) REFERENCES model_versions (model_id, id),
    FOREIGN KEY (model_id, previous_version_id) REFERENCES model_versions (model_id, id)
);
CREATE INDEX stage_moves_stage_idx ON stage_moves (stage_id, moved_at, id);
CREATE TRIGGER stage_moves_immutable BEFORE UPDATE OR DELETE ON stage_moves
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();

-- The outbox: every change that matters, written in the transaction of the
-- change; webhooks deliver from here. seq orders a model's events.
ALTER TABLE models ADD COLUMN event_seq bigint NOT NULL DEFAULT 0 CHECK (event_seq >= 0);
CREATE TABLE events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    type       text NOT NULL CHECK (type ~ '^[a-z_]+\.[a-z_]+$'),
    model_id   bigint REFERENCES models (id),
    seq        bigint,
    payload    jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, seq),
    CHECK ((model_id IS NULL) = (seq IS NULL))
);
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION evidence_immutable();
