package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/registry"
	"github.com/slipway-ml/slipway/internal/testenv"
)

func keys(t *testing.T, s blob.Store) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), "", func(i blob.Info) error { out = append(out, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// runReaperTest checks the reaper on one store: objects of a committed
// version stay, orphans older than the grace go, young ones stay.
func runReaperTest(t *testing.T, store blob.Store) {
	db := testenv.NewDB(t)
	svc := registry.NewService(db.Pool, store)
	ctx := context.Background()
	if _, err := svc.CreateModel(ctx, registry.NewModel{Name: "m"}); err != nil {
		t.Fatal(err)
	}
	up, err := svc.BeginUpload(ctx, "m", registry.NewVersion{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Add(ctx, "kept.bin", "", strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A crash after the upload, before the commit: objects no row names.
	crashed, err := svc.BeginUpload(ctx, "m", registry.NewVersion{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a.bin", "b/c.bin"} {
		if _, err := crashed.Add(ctx, p, "", strings.NewReader(p)); err != nil {
			t.Fatal(err)
		}
	}
	// Something else in the bucket is not the reaper's business.
	store.Put(ctx, "other/thing", strings.NewReader("x"), blob.PutOptions{Size: 1})
	if got := len(keys(t, store)); got != 4 {
		t.Fatalf("%d objects before reaping, want 4", got)
	}

	// Within the grace period the orphans are an upload in progress: kept.
	st, err := svc.ReapOrphans(ctx, time.Hour)
	if err != nil || st.Deleted != 0 {
		t.Fatalf("reap within grace: %+v %v", st, err)
	}
	time.Sleep(1100 * time.Millisecond) // object times have one-second resolution on some stores
	st, err = svc.ReapOrphans(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Deleted != 2 {
		t.Errorf("deleted %d, want the 2 orphans", st.Deleted)
	}
	left := keys(t, store)
	if len(left) != 2 || !strings.HasPrefix(left[0], "models/") || left[1] != "other/thing" {
		t.Errorf("left after reaping: %v", left)
	}
	// The committed version still downloads.
	a, err := svc.FindArtifact(ctx, "m", 1, "kept.bin")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := svc.OpenArtifact(ctx, a, nil)
	if err != nil {
		t.Fatalf("the reaper took a committed version's object: %v", err)
	}
	rc.Close()
}

func TestReapOrphansFilesystem(t *testing.T) {
	t.Parallel()
	store, err := blob.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	runReaperTest(t, store)
}

func TestReapOrphansMinIO(t *testing.T) {
	t.Parallel()
	s3 := testenv.NewS3(t)
	store, err := blob.NewS3(context.Background(), blob.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Region: "us-east-1", CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	runReaperTest(t, store)
}
