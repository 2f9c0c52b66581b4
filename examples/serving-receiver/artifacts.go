package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Limits of artifacts, Slipway's own: paths of at most 1024 bytes, files of
// at most 5 TiB.
const (
	maxPathLen      = 1024
	maxArtifactSize = 5 << 40
)

// stagingPrefix starts the name of the directory a version is downloaded
// into, next to where it will be installed. The leading dot keeps it apart
// from version directories, which are numbers.
const stagingPrefix = ".incoming-"

// fetchError is a failed download: the network, the artifact server, or
// bytes that are not the ones declared. It is answered 502, so that Slipway
// sends the event again, with fresh URLs.
type fetchError struct{ msg string }

func (e *fetchError) Error() string { return e.msg }

func fetchErrorf(format string, args ...any) error {
	return &fetchError{msg: fmt.Sprintf(format, args...)}
}

// checkArtifacts refuses artifacts that could not be installed safely,
// before anything is downloaded. The paths come from a signed message, but
// they become file names here: a bug or a compromise upstream must not let
// one write outside the version's directory.
func checkArtifacts(arts []artifact) error {
	paths := map[string]bool{}
	for _, a := range arts {
		if _, err := localPath(a.Path); err != nil {
			return err
		}
		if paths[a.Path] {
			return fmt.Errorf("artifact path %q appears twice", a.Path)
		}
		paths[a.Path] = true
		if a.Size < 0 || a.Size > maxArtifactSize {
			return fmt.Errorf("artifact %q: size %d out of range", a.Path, a.Size)
		}
		if sum, err := hex.DecodeString(a.SHA256); err != nil || len(sum) != sha256.Size {
			return fmt.Errorf("artifact %q: sha256 %q is not 64 hex digits", a.Path, a.SHA256)
		}
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("artifact %q: url is not an http(s) URL", a.Path)
		}
	}
	// "a" and "a/b" cannot both be files.
	for p := range paths {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if paths[dir] {
				return fmt.Errorf("artifact path %q is inside artifact %q", p, dir)
			}
		}
	}
	return nil
}

// localPath turns an artifact path into a relative path of this system,
// refusing anything that could leave the directory it is joined to:
// absolute paths, '..' (and '.' or empty) segments, backslashes (a
// separator on Windows, and a way to smuggle '..\' past checks that look
// only for '/'), and control characters.
func localPath(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("artifact path is empty")
	case len(p) > maxPathLen:
		return "", fmt.Errorf("artifact path of %d bytes: at most %d", len(p), maxPathLen)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("artifact path %q is absolute", p)
	case strings.Contains(p, `\`):
		return "", fmt.Errorf("artifact path %q contains a backslash", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("artifact path %q contains a control character", p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("artifact path %q has an empty, '.' or '..' segment", p)
		}
	}
	// The rules above are enough on Unix; IsLocal adds the operating
	// system's own (on Windows: drive letters, reserved names such as NUL).
	native := filepath.FromSlash(p)
	if !filepath.IsLocal(native) {
		return "", fmt.Errorf("artifact path %q is not a local path on this system", p)
	}
	return native, nil
}

// install makes <dir>/<model>/<version> hold the version's artifacts,
// checked, and returns that directory.
//
// Everything is downloaded into a staging directory next to it, then the
// staging directory is renamed into place. A rename within one file system
// is atomic: the version directory either does not exist or holds every
// file, complete and checked. A failure leaves nothing but the staging
// directory, which is removed (and, after a crash, removed at the next
// start by removeLeftovers).
func (rc *Receiver) install(ctx context.Context, sm stageMoved) (string, error) {
	modelDir := filepath.Join(rc.dir, sm.Model)
	final := filepath.Join(modelDir, strconv.FormatInt(sm.Version, 10))

	// A version is immutable in Slipway: if it is already here (another
	// stage holds it, or the stage moves back to it), checking the files
	// is cheaper than downloading them again.
	if present(final, sm.Artifacts) {
		rc.log.Printf("model %s version %d already in %s", sm.Model, sm.Version, final)
		return final, nil
	}

	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		return "", err
	}
	staging, err := os.MkdirTemp(modelDir, stagingPrefix+strconv.FormatInt(sm.Version, 10)+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(staging) // after the rename, there is nothing left to remove
	if err := os.Chmod(staging, 0o755); err != nil {
		return "", err // MkdirTemp makes it 0700: the serving process may run as another user
	}

	start := time.Now()
	var total int64
	for _, a := range sm.Artifacts {
		rel, _ := localPath(a.Path) // checked by validate
		if err := rc.download(ctx, a, filepath.Join(staging, rel)); err != nil {
			return "", err
		}
		total += a.Size
	}

	// What is at final is incomplete or altered (present said no): replace it.
	if err := os.RemoveAll(final); err != nil {
		return "", err
	}
	if err := os.Rename(staging, final); err != nil {
		return "", err
	}
	syncDir(modelDir)
	rc.log.Printf("model %s version %d: %d artifacts, %d bytes downloaded in %s", sm.Model, sm.Version, len(sm.Artifacts), total, time.Since(start).Round(time.Millisecond))
	return final, nil
}

// download streams one artifact to dst, hashing it on the way, and checks
// its size and SHA-256 against the declared ones. Streaming keeps memory
// flat whatever the size; reading at most the declared size plus one byte
// stops a server that sends too much as soon as it does.
func (rc *Receiver) download(ctx context.Context, a artifact, dst string) error {
	want, _ := hex.DecodeString(a.SHA256) // checked by validate

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return fetchErrorf("artifact %s: %v", a.Path, err)
	}
	resp, err := rc.client.Do(req)
	if err != nil {
		// The error of Do quotes the URL, whose query string is a
		// credential (presigned): keep it out of logs and answers.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fetchErrorf("artifact %s: GET: %v", a.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fetchErrorf("artifact %s: GET: %s", a.Path, resp.Status)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != a.Size {
		return fetchErrorf("artifact %s: the server sends %d bytes, %d declared", a.Path, resp.ContentLength, a.Size)
	}

	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // a second Close, after the one below, is harmless

	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, a.Size+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err // writing the file failed: a local problem, 500
		}
		return fetchErrorf("artifact %s: reading: %v", a.Path, err)
	}
	switch {
	case n > a.Size:
		return fetchErrorf("artifact %s: more than the %d bytes declared", a.Path, a.Size)
	case n < a.Size:
		return fetchErrorf("artifact %s: %d bytes, %d declared", a.Path, n, a.Size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fetchErrorf("artifact %s: sha256 %x, %s declared", a.Path, got, a.SHA256)
	}

	// On disk before the rename makes it visible: after a power cut, a
	// version directory must not hold files with missing blocks.
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// present reports whether dir holds every artifact with its declared size
// and SHA-256.
func present(dir string, arts []artifact) bool {
	if _, err := os.Stat(dir); err != nil {
		return false
	}
	for _, a := range arts {
		rel, _ := localPath(a.Path)
		if !fileMatches(filepath.Join(dir, rel), a) {
			return false
		}
	}
	return true
}

func fileMatches(name string, a artifact) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() != a.Size {
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	want, _ := hex.DecodeString(a.SHA256)
	return bytes.Equal(h.Sum(nil), want)
}

// syncDir flushes a directory's entries (the rename) to disk. Best effort:
// not every system can sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// removeLeftovers removes the staging directories a crash left behind.
func removeLeftovers(dir string, logger *log.Logger) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*", stagingPrefix+"*"))
	for _, m := range matches {
		if err := os.RemoveAll(m); err == nil {
			logger.Printf("removed the unfinished download %s", m)
		}
	}
}

// newDownloadClient returns the HTTP client for artifacts.
//
// Compression is off so that the bytes received are the object's bytes,
// the ones whose size and SHA-256 Slipway declared (with it on, Go would
// ask for gzip and transparently decompress, and Content-Length would no
// longer be the size). The whole download is bounded by the context's
// deadline (-download-timeout), not by a client timeout; the dial and
// header timeouts only catch a server that does not answer at all.
func newDownloadClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			DisableCompression:    true,
			ForceAttemptHTTP2:     true, // a custom dialer turns HTTP/2 off unless asked
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
	}
}
