package blob_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway-ml/slipway/internal/blob"
	"github.com/slipway-ml/slipway/internal/blob/blobtest"
	"github.com/slipway-ml/slipway/internal/errs"
)

func newFS(t *testing.T, dir string) *blob.FSStore {
	t.Helper()
	s, err := blob.NewFilesystem(dir)
	if err != nil {
		t.Fatalf("NewFilesystem: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFilesystemConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newFS(t, t.TempDir()) })
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// brokenReader returns some bytes, then an error.
type brokenReader struct{ n int }

var errBroken = errors.New("broken")

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errBroken
	}
	n := min(len(p), b.n)
	b.n -= n
	return n, nil
}

func TestFilesystemFailedPutLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	s := newFS(t, dir)
	ctx := t.Context()
	data := []byte("0123456789")

	fails := []struct {
		name string
		r    io.Reader
		opts blob.PutOptions
	}{
		{"reader error", &brokenReader{n: 100_000}, blob.PutOptions{Size: -1}},
		{"short stream", bytes.NewReader(data), blob.PutOptions{Size: 11}},
		{"long stream", bytes.NewReader(data), blob.PutOptions{Size: 9}},
		{"wrong digest", bytes.NewReader(data), blob.PutOptions{Size: -1, SHA256: strings.Repeat("0", 64)}},
	}
	for _, f := range fails {
		if _, err := s.Put(ctx, "deep/key/obj", f.r, f.opts); err == nil {
			t.Errorf("%s: Put succeeded", f.name)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Errorf("%s: files left after a failed Put: %q", f.name, got)
		}
	}

	// Over an existing object, a failed Put leaves exactly that object.
	if _, err := s.Put(ctx, "deep/key/obj", bytes.NewReader(data), blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	before := files(t, dir)
	for _, f := range fails[:1] {
		if _, err := s.Put(ctx, "deep/key/obj", f.r, f.opts); err == nil {
			t.Errorf("%s: Put succeeded", f.name)
		}
	}
	if diff := cmp.Diff(before, files(t, dir)); diff != "" {
		t.Errorf("files changed by a failed Put (-before +after):\n%s", diff)
	}
	b, err := os.ReadFile(filepath.Join(dir, "objects", "deep", "key", "obj"))
	if err != nil || !bytes.Equal(b, data) {
		t.Errorf("object file = %q, %v; want %q", b, err, data)
	}
}

func TestFilesystemLayout(t *testing.T) {
	dir := t.TempDir()
	s := newFS(t, dir)
	ctx := t.Context()
	if _, err := s.Put(ctx, "a/b/c", strings.NewReader("abc"), blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"meta/a/b/c", "objects/a/b/c"}, files(t, dir)); diff != "" {
		t.Errorf("files mismatch (-want +got):\n%s", diff)
	}
	// Delete prunes the directories it emptied, in both trees.
	if err := s.Delete(ctx, "a/b/c"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"objects/a", "meta/a"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after Delete: %v, want it gone", p, err)
		}
	}
}

func TestFilesystemStaleMetadata(t *testing.T) {
	// A crash between the renames of a Put leaves metadata that does not
	// describe the object: the digest must then be unknown, not wrong.
	dir := t.TempDir()
	s := newFS(t, dir)
	ctx := t.Context()
	if _, err := s.Put(ctx, "k", strings.NewReader("version one"), blob.PutOptions{Size: -1, ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "meta", "k"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", strings.NewReader("version 2"), blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta", "k"), meta, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	want := blob.Info{Key: "k", Size: 9, ContentType: blob.DefaultContentType, ModTime: info.ModTime}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Stat with stale metadata (-want +got):\n%s", diff)
	}
}

func TestFilesystemSymlinkEscape(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newFS(t, dir)
	for name, target := range map[string]string{"abs": outside, "rel": "../../" + filepath.Base(filepath.Dir(outside)) + "/secret"} {
		if err := os.Symlink(target, filepath.Join(dir, "objects", name)); err != nil {
			t.Fatal(err)
		}
		if rc, _, err := s.Get(t.Context(), name, nil); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Errorf("Get(%q) through a symlink out of the store returned %q", name, b)
		}
	}
	var listed []string
	s.List(t.Context(), "", func(i blob.Info) error { listed = append(listed, i.Key); return nil })
	if len(listed) != 0 {
		t.Errorf("List shows symlinks: %q", listed)
	}
}

func TestFilesystemKeyClash(t *testing.T) {
	s := newFS(t, t.TempDir())
	ctx := t.Context()
	if _, err := s.Put(ctx, "a", strings.NewReader("a"), blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "a/b", strings.NewReader("b"), blob.PutOptions{Size: -1}); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("Put(a/b) with object a: error = %v, want errs.ErrConflict", err)
	}
	if _, err := s.Put(ctx, "x/y", strings.NewReader("y"), blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "x", strings.NewReader("x"), blob.PutOptions{Size: -1}); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("Put(x) with object x/y: error = %v, want errs.ErrConflict", err)
	}
}

func TestNewFilesystemBadDir(t *testing.T) {
	if _, err := blob.NewFilesystem(""); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("NewFilesystem(\"\"): error = %v, want errs.ErrInvalid", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := blob.NewFilesystem(file); err == nil {
		t.Error("NewFilesystem(a regular file) succeeded")
	}
}

func TestFilesystemPingUnavailable(t *testing.T) {
	dir := t.TempDir()
	s := newFS(t, dir)
	if err := os.RemoveAll(filepath.Join(dir, "objects")); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("Ping with the objects directory gone: error = %v, want errs.ErrUnavailable", err)
	}
}
