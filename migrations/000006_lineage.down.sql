DROP TABLE lineage_edges;
DROP TABLE dataset_quality_results;
DROP TABLE dataset_versions;
DROP FUNCTION lineage_evidence_immutable();
DROP TABLE runs;
DROP TABLE datasets;
