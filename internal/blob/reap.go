package blob

import (
	"context"
	"fmt"
	"time"
)

// ReapStats says what a reaper pass did.
type ReapStats struct {
	Scanned int // objects looked at
	Deleted int // orphans removed
	Aborted int // unfinished multipart uploads aborted
}

// Add adds the counts of o to st.
func (st *ReapStats) Add(o ReapStats) {
	st.Scanned += o.Scanned
	st.Deleted += o.Deleted
	st.Aborted += o.Aborted
}

// AbortStaleUploads aborts the unfinished multipart uploads under prefix
// that began before cutoff, in a store that has them (S3; the filesystem
// store has none): a crash in the middle of a large Put leaves their parts,
// invisible to List and billed all the same. It returns how many it
// aborted.
func AbortStaleUploads(ctx context.Context, s Store, prefix string, cutoff time.Time) (int, error) {
	a, ok := s.(interface {
		AbortStaleUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error)
	})
	if !ok {
		return 0, nil
	}
	return a.AbortStaleUploads(ctx, prefix, cutoff)
}

// ReapUnreferenced deletes the objects under prefix that are older than
// cutoff and that referenced says no row points to, and aborts the
// unfinished uploads under prefix begun before cutoff: what a crash
// between an upload and the transaction that records it leaves behind.
// Younger objects may be uploads in progress and stay. Running it in
// several processes at once is harmless (a delete of a missing key is not
// an error).
func ReapUnreferenced(ctx context.Context, s Store, prefix string, cutoff time.Time, referenced func(ctx context.Context, key string) (bool, error)) (ReapStats, error) {
	var st ReapStats
	err := s.List(ctx, prefix, func(o Info) error {
		st.Scanned++
		if o.ModTime.After(cutoff) {
			return nil
		}
		ok, err := referenced(ctx, o.Key)
		if err != nil || ok {
			return err
		}
		if err := s.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("reap %s: %w", o.Key, err)
		}
		st.Deleted++
		return nil
	})
	if err == nil {
		st.Aborted, err = AbortStaleUploads(ctx, s, prefix, cutoff)
	}
	if err != nil {
		return st, fmt.Errorf("reap %s: %w", prefix, err)
	}
	return st, nil
}
