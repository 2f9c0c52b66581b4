package registry

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-ml/slipway/internal/blob"
)

// ReapStats says what a reaper pass did: the objects and uploads under
// models/, and the expired drafts.
type ReapStats struct {
	blob.ReapStats
	Drafts int // expired drafts deleted
}

// ReapOrphans deletes objects under models/ that no version references
// (storage_prefix) and that are older than grace: what a crash between
// upload and commit leaves behind. The grace keeps uploads in progress
// safe; their prefix is recorded only when they commit. Several Slipway
// processes may run it at once: deleting twice is harmless.
//
// The listing is in key order, so the objects of one prefix come together
// and are judged together: memory does not grow with the bucket.
func (s *Service) ReapOrphans(ctx context.Context, grace time.Duration) (ReapStats, error) {
	var (
		st      ReapStats
		prefix  string
		pending []blob.Info
		fresh   bool // the prefix has an object younger than grace: an upload in progress
	)
	// Expired drafts first: their objects become orphans like any other.
	n, err := s.DeleteExpiredDrafts(ctx)
	st.Drafts = n
	if err != nil {
		return st, err
	}
	cutoff := time.Now().Add(-grace)
	flush := func() error {
		batch, young := pending, fresh
		pending, fresh = nil, false
		if len(batch) == 0 || young {
			return nil
		}
		var one int
		err := s.db.QueryRow(ctx, `SELECT 1 FROM model_versions WHERE storage_prefix = $1`, prefix).Scan(&one)
		if err == nil {
			return nil // referenced
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reap: %w", err)
		}
		for _, o := range batch {
			if err := s.store.Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("reap %s: %w", o.Key, err)
			}
			st.Deleted++
		}
		return nil
	}
	err = s.store.List(ctx, "models/", func(o blob.Info) error {
		st.Scanned++
		p := path.Dir(o.Key) // models/<model id>/<random>
		if strings.Count(p, "/") != 2 {
			return nil // not a version's object: not ours to judge
		}
		if p != prefix {
			if err := flush(); err != nil {
				return err
			}
			prefix = p
		}
		if o.ModTime.Before(cutoff) {
			pending = append(pending, o)
		} else {
			fresh = true
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if err := flush(); err != nil {
		return st, err
	}
	st.Aborted, err = blob.AbortStaleUploads(ctx, s.store, "models/", cutoff)
	return st, err
}
