package lineage

import (
	"context"
	"time"

	"github.com/slipway-ml/slipway/internal/blob"
)

// ReapOrphans deletes uploaded dataset files and raw quality results that
// no row references and that are older than grace: what a crash between
// the upload and the transaction that records it leaves behind. Young
// objects may be uploads in progress and stay. It returns the objects
// scanned and deleted; running it in several processes at once is
// harmless.
func (s *Service) ReapOrphans(ctx context.Context, grace time.Duration) (scanned, deleted int, err error) {
	cutoff := time.Now().Add(-grace)
	for _, p := range []struct{ prefix, query string }{
		{"datasets/", `SELECT EXISTS (SELECT FROM dataset_versions WHERE object_key = $1)`},
		{"quality/", `SELECT EXISTS (SELECT FROM dataset_quality_results WHERE raw_object_key = $1)`},
	} {
		n, d, err := blob.ReapUnreferenced(ctx, s.store, p.prefix, cutoff, func(ctx context.Context, key string) (bool, error) {
			var ok bool
			err := s.db.QueryRow(ctx, p.query, key).Scan(&ok)
			return ok, err
		})
		scanned, deleted = scanned+n, deleted+d
		if err != nil {
			return scanned, deleted, err
		}
	}
	return scanned, deleted, nil
}
