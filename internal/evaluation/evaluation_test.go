package evaluation_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/evaluation"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/testenv"
)

func setup(t *testing.T) (context.Context, *evaluation.Service, blob.Store) {
	t.Helper()
	ctx := context.Background()
	db := testenv.NewDB(t)
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.NewService(db.Pool, store)
	if _, err := reg.CreateModel(ctx, registry.NewModel{Name: "m"}); err != nil {
		t.Fatal(err)
	}
	up, err := reg.BeginUpload(ctx, "m", registry.NewVersion{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Add(ctx, "model.bin", "", strings.NewReader("w")); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, evaluation.NewService(db.Pool, store), store
}

func reports(t *testing.T, ctx context.Context, store blob.Store) []string {
	t.Helper()
	var keys []string
	if err := store.List(ctx, "reports/", func(o blob.Info) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

// A body that is not a report is refused and nothing stays: no row, no
// object.
func TestRefusedReportLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx, svc, store := setup(t)
	for _, body := range []string{`not json`, `[1, 2]`, `{"what": "ever"}`, `{"metrics": {"a": true}}`} {
		_, err := svc.Attach(ctx, "m", 1, evaluation.NewReport{Suite: "s"}, strings.NewReader(body))
		if !errors.Is(err, errs.ErrUnprocessable) {
			t.Errorf("%s: %v, want unprocessable", body, err)
		}
	}
	if keys := reports(t, ctx, store); len(keys) != 0 {
		t.Errorf("objects left behind: %v", keys)
	}
	if rs, _, err := svc.List(ctx, "m", 1, pageAll()); err != nil || len(rs) != 0 {
		t.Errorf("rows left behind: %d, %v", len(rs), err)
	}
}

// The reaper deletes old objects no report points to, and keeps the rest.
func TestReapOrphanReports(t *testing.T) {
	t.Parallel()
	ctx, svc, store := setup(t)
	kept, err := svc.Attach(ctx, "m", 1, evaluation.NewReport{Suite: "s"}, strings.NewReader(`{"metrics": {"a": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	// what a crash between the upload and the commit leaves
	if _, err := store.Put(ctx, "reports/1/orphan", strings.NewReader("{}"), blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if st, err := svc.ReapOrphans(ctx, time.Hour); err != nil || st.Scanned != 2 || st.Deleted != 0 {
		t.Fatalf("within the grace: deleted %d of %d, %v", st.Deleted, st.Scanned, err)
	}
	if st, err := svc.ReapOrphans(ctx, -time.Second); err != nil || st.Scanned != 2 || st.Deleted != 1 {
		t.Fatalf("after the grace: deleted %d of %d, %v; want 1 of 2", st.Deleted, st.Scanned, err)
	}
	if left := reports(t, ctx, store); len(left) != 1 || strings.Contains(left[0], "orphan") {
		t.Errorf("left: %v", left)
	}
	if _, rc, _, err := svc.OpenRaw(ctx, "m", 1, kept.ID, nil); err != nil {
		t.Errorf("the referenced report is gone: %v", err)
	} else {
		rc.Close()
	}
}

func pageAll() pagination.Page { return pagination.Page{Limit: pagination.MaxLimit} }
