// Package static embeds the files the browser UI loads (Slipway's CSS and
// script, htmx fetched from npm by make) and serves them under
// content-hashed URLs, so they can be cached for a year and still change the
// moment a new Slipway is deployed.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// files holds the assets. vendor/ is filled by `make` from node_modules and
// is not committed; the .keep file makes the pattern valid on a fresh clone.
//
//go:embed css img js all:vendor
var files embed.FS

// Required lists the assets without which the UI does not work.
var Required = []string{"css/slipway.css", "img/favicon.svg", "js/slipway.js", "vendor/htmx.min.js"}

// Assets resolves asset names to hashed URLs and serves them.
type Assets struct {
	urls  map[string]string // "css/slipway.css" -> "/static/css/slipway.3f2a1b9c0d1e.css"
	files map[string]string // "css/slipway.3f2a1b9c0d1e.css" -> "css/slipway.css"
}

// Prefix is where assets are served.
const Prefix = "/static/"

// New hashes every embedded asset. It fails when a required asset is
// missing (htmx not fetched: run make).
func New() (*Assets, error) {
	a := &Assets{urls: map[string]string{}, files: map[string]string{}}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(p)
		hashed := strings.TrimSuffix(p, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		a.urls[p] = Prefix + hashed
		a.files[hashed] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range Required {
		if _, ok := a.urls[r]; !ok {
			return nil, fmt.Errorf("static asset %s is missing: run `make` to fetch front-end dependencies", r)
		}
	}
	return a, nil
}

// URL returns the hashed URL of an asset. An unknown name is a programming
// error caught by the tests that render every page.
func (a *Assets) URL(name string) string {
	u, ok := a.urls[name]
	if !ok {
		panic("static: unknown asset " + name)
	}
	return u
}

// ServeHTTP serves an asset by its hashed path, cacheable forever. Unhashed
// or stale paths are 404: a page never links to them.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := a.files[strings.TrimPrefix(r.URL.Path, Prefix)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := files.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
