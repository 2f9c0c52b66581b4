package lineage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	for _, prefix := range []struct{ prefix, query string }{
		{"datasets/", `SELECT 1 FROM dataset_versions WHERE object_key = $1`},
		{"quality/", `SELECT 1 FROM dataset_quality_results WHERE raw_object_key = $1`},
	} {
		err := s.store.List(ctx, prefix.prefix, func(o blob.Info) error {
			scanned++
			if o.ModTime.After(cutoff) {
				return nil
			}
			var one int
			err := s.db.QueryRow(ctx, prefix.query, o.Key).Scan(&one)
			if err == nil {
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if err := s.store.Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("reap %s: %w", o.Key, err)
			}
			deleted++
			return nil
		})
		if err != nil {
			return scanned, deleted, fmt.Errorf("reap %s: %w", prefix.prefix, err)
		}
	}
	return scanned, deleted, nil
}
