DROP TABLE model_artifacts;
DROP FUNCTION model_artifacts_immutable();
DROP TABLE model_versions;
ALTER TABLE models DROP COLUMN next_version;
