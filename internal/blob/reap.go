package blob

import (
	"context"
	"fmt"
	"time"
)

// ReapUnreferenced deletes the objects under prefix that are older than
// cutoff and that referenced says no row points to: what a crash between
// an upload and the transaction that records it leaves behind. Younger
// objects may be uploads in progress and stay. It returns the objects
// scanned and deleted; running it in several processes at once is
// harmless (a delete of a missing key is not an error).
func ReapUnreferenced(ctx context.Context, s Store, prefix string, cutoff time.Time, referenced func(ctx context.Context, key string) (bool, error)) (scanned, deleted int, err error) {
	err = s.List(ctx, prefix, func(o Info) error {
		scanned++
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
		deleted++
		return nil
	})
	if err != nil {
		return scanned, deleted, fmt.Errorf("reap %s: %w", prefix, err)
	}
	return scanned, deleted, nil
}
