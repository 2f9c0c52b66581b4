-- Datasets and their versions, data-quality results, pipeline runs and the
-- lineage graph that joins them to model versions.

CREATE TABLE datasets (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    owner        text NOT NULL DEFAULT '' CHECK (length(owner) <= 128),
    tags         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tags) = 'object'),
    -- the OpenLineage identity (namespace + name) of a dataset first seen in
    -- an OpenLineage event, or bound to one
    ol_namespace text,
    ol_name      text,
    next_version integer NOT NULL DEFAULT 1 CHECK (next_version > 0),
    created_by   bigint REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (ol_namespace, ol_name),
    CHECK ((ol_namespace IS NULL) = (ol_name IS NULL))
);

CREATE TABLE runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    orchestrator  text NOT NULL CHECK (length(orchestrator) BETWEEN 1 AND 64),
    external_id   text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 512),
    -- the pipeline, flow, DAG or job this run executes
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 1024),
    namespace     text NOT NULL DEFAULT '' CHECK (length(namespace) <= 1024),
    status        text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'aborted')),
    git_repo      text NOT NULL DEFAULT '',
    git_commit    text NOT NULL DEFAULT '' CHECK (git_commit = '' OR git_commit ~ '^[0-9a-f]{7,64}$'),
    git_dirty     boolean,
    image         text NOT NULL DEFAULT '',
    parameters    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    links         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(links) = 'array'),
    -- OpenLineage run and job facets as received, unknown ones included
    facets        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(facets) = 'object'),
    job_facets    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(job_facets) = 'object'),
    error_message text NOT NULL DEFAULT '',
    parent_id     bigint REFERENCES runs (id),
    started_at    timestamptz,
    ended_at      timestamptz,
    -- time of the latest OpenLineage event applied: older events arriving
    -- late do not move the status back
    event_time    timestamptz,
    created_by    bigint REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (orchestrator, external_id),
    CHECK (parent_id <> id),
    CHECK (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX runs_parent_idx ON runs (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX runs_name_idx ON runs (name, id);

CREATE TABLE dataset_versions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id       bigint NOT NULL REFERENCES datasets (id),
    version          integer NOT NULL CHECK (version > 0),
    -- how the data is held: uploaded to Slipway, or registered by reference
    source_type      text NOT NULL CHECK (source_type IN ('upload', 'object', 'warehouse_query', 'dbt_run', 'lakehouse_ref', 'openlineage')),
    -- the type's own fields (URI, SQL hash, manifest hash, snapshot id…);
    -- stored as text, never fetched by the server
    reference        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(reference) = 'object'),
    -- SHA-256 of the content: computed by Slipway for uploads, declared for objects
    sha256           text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size             bigint CHECK (size >= 0),
    object_key       text UNIQUE,
    content_type     text,
    schema           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(schema) = 'array'),
    row_count        bigint CHECK (row_count >= 0),
    statistics       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(statistics) = 'object'),
    split            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(split) = 'object'),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    tags             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tags) = 'object'),
    -- OpenLineage dataset facets as received, unknown ones included
    facets           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(facets) = 'object'),
    -- the producer's own version id (OpenLineage version facet, a snapshot id…)
    external_version text CHECK (length(external_version) BETWEEN 1 AND 512),
    -- the run whose output this version is, when an OpenLineage event made it
    produced_by      bigint REFERENCES runs (id),
    created_by       bigint REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dataset_id, version),
    UNIQUE (dataset_id, external_version),
    UNIQUE (dataset_id, produced_by),
    CHECK ((source_type = 'upload') = (object_key IS NOT NULL)),
    CHECK (source_type NOT IN ('upload', 'object') OR sha256 IS NOT NULL)
);

CREATE TABLE dataset_quality_results (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_version_id bigint NOT NULL REFERENCES dataset_versions (id),
    suite              text NOT NULL CHECK (length(suite) BETWEEN 1 AND 256),
    producer           text NOT NULL DEFAULT '' CHECK (length(producer) <= 256),
    passed             boolean NOT NULL,
    failed_checks      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(failed_checks) = 'array'),
    statistics         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(statistics) = 'object'),
    url                text NOT NULL DEFAULT '',
    -- the raw result document, kept in the object store
    raw_object_key     text UNIQUE,
    raw_sha256         text CHECK (raw_sha256 ~ '^[0-9a-f]{64}$'),
    raw_size           bigint CHECK (raw_size >= 0),
    created_by         bigint REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((raw_object_key IS NULL) = (raw_sha256 IS NULL))
);
CREATE INDEX dataset_quality_results_version_idx ON dataset_quality_results (dataset_version_id, id);

-- Dataset versions and quality results are evidence: never changed, never
-- deleted, whatever path the statement comes from.
CREATE FUNCTION lineage_evidence_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER dataset_versions_immutable BEFORE UPDATE OR DELETE ON dataset_versions
    FOR EACH ROW EXECUTE FUNCTION lineage_evidence_immutable();
CREATE TRIGGER dataset_quality_results_immutable BEFORE UPDATE OR DELETE ON dataset_quality_results
    FOR EACH ROW EXECUTE FUNCTION lineage_evidence_immutable();

-- The lineage graph: data flows from src to dst. Each end is one row of
-- one table, named by a foreign key; kind and id are derived from them, so
-- the walk reads one index whatever the kinds.
CREATE TABLE lineage_edges (
    src_dataset_version bigint REFERENCES dataset_versions (id),
    src_run             bigint REFERENCES runs (id),
    src_model_version   bigint REFERENCES model_versions (id) ON DELETE CASCADE,
    dst_dataset_version bigint REFERENCES dataset_versions (id),
    dst_run             bigint REFERENCES runs (id),
    dst_model_version   bigint REFERENCES model_versions (id) ON DELETE CASCADE,
    src_kind text GENERATED ALWAYS AS (CASE
        WHEN src_dataset_version IS NOT NULL THEN 'dataset_version'
        WHEN src_run IS NOT NULL THEN 'run'
        ELSE 'model_version' END) STORED,
    src_id bigint GENERATED ALWAYS AS (coalesce(src_dataset_version, src_run, src_model_version)) STORED,
    dst_kind text GENERATED ALWAYS AS (CASE
        WHEN dst_dataset_version IS NOT NULL THEN 'dataset_version'
        WHEN dst_run IS NOT NULL THEN 'run'
        ELSE 'model_version' END) STORED,
    dst_id bigint GENERATED ALWAYS AS (coalesce(dst_dataset_version, dst_run, dst_model_version)) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (src_kind, src_id, dst_kind, dst_id),
    CHECK (num_nonnulls(src_dataset_version, src_run, src_model_version) = 1),
    CHECK (num_nonnulls(dst_dataset_version, dst_run, dst_model_version) = 1),
    -- a run reads and writes data and models; training data may also point
    -- straight at the model version it trained, when no run was reported
    CHECK ((src_kind, dst_kind) IN (
        ('dataset_version', 'run'), ('model_version', 'run'),
        ('run', 'dataset_version'), ('run', 'model_version'),
        ('dataset_version', 'model_version')))
);
CREATE INDEX lineage_edges_dst_idx ON lineage_edges (dst_kind, dst_id) INCLUDE (src_kind, src_id);
-- deleting an expired draft version removes its edges
CREATE INDEX lineage_edges_src_mv_idx ON lineage_edges (src_model_version) WHERE src_model_version IS NOT NULL;
CREATE INDEX lineage_edges_dst_mv_idx ON lineage_edges (dst_model_version) WHERE dst_model_version IS NOT NULL;
