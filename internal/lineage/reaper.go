package lineage

import (
	"context"
	"time"

	"github.com/slipway-ml/slipway/internal/blob"
)

// ReapOrphans deletes uploaded dataset files and raw quality results that
// no row references and that are older than grace, and aborts their
// unfinished uploads: what a crash between the upload and the transaction
// that records it leaves behind. Young objects may be uploads in progress
// and stay. Running it in several processes at once is harmless.
func (s *Service) ReapOrphans(ctx context.Context, grace time.Duration) (blob.ReapStats, error) {
	var st blob.ReapStats
	cutoff := time.Now().Add(-grace)
	for _, p := range []struct{ prefix, query string }{
		{"datasets/", `SELECT EXISTS (SELECT FROM dataset_versions WHERE object_key = $1)`},
		{"quality/", `SELECT EXISTS (SELECT FROM dataset_quality_results WHERE raw_object_key = $1)`},
	} {
		one, err := blob.ReapUnreferenced(ctx, s.store, p.prefix, cutoff, func(ctx context.Context, key string) (bool, error) {
			var ok bool
			err := s.db.QueryRow(ctx, p.query, key).Scan(&ok)
			return ok, err
		})
		st.Add(one)
		if err != nil {
			return st, err
		}
	}
	return st, nil
}
