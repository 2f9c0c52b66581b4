package blob

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-ml/slipway/internal/errs"
)

// FSStore keeps objects in a local directory, for single-node installs and
// development. Layout under the directory:
//
//	objects/<key>  the object's bytes; key segments are subdirectories
//	meta/<key>     JSON: SHA-256, content type, and the size and mtime of
//	               the object file it describes
//	tmp/           Puts in progress
//
// Put writes to tmp/ while hashing, fsyncs, and renames into objects/, so a
// partial object never appears under its key. The metadata is renamed into
// meta/ just after; a Stat or Get that finds metadata whose size and mtime do
// not match the object file (a crash between the two renames) reports the
// digest as unknown rather than a wrong one. The renames of a Put, a
// Delete, and the reads of Stat and Get are serialized per key within the
// process, so they see an object and its metadata as a pair; several
// processes must not share one directory. Delete removes the directories it
// leaves empty, so their names can become keys again.
//
// All file access goes through an os.Root, so no path escapes the directory
// even if a key were to bypass ValidateKey. Files are created 0600 and
// directories 0700: artifacts may be private.
type FSStore struct {
	root  *os.Root
	seed  maphash.Seed
	locks [64]sync.RWMutex // striped per key; see lock
}

var _ Store = (*FSStore)(nil)

const (
	fsObjects = "objects"
	fsMeta    = "meta"
	fsTmp     = "tmp"
	// fsTmpMaxAge is the age beyond which NewFilesystem removes files left
	// in tmp/ by a crash.
	fsTmpMaxAge = time.Hour
	// fsRetries bounds the attempts to rename into a directory that a
	// concurrent Delete removes (it prunes empty directories).
	fsRetries = 5
)

// fsMetaFile is the JSON in meta/<key>.
type fsMetaFile struct {
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	// Size and ModTimeNano identify the object file the metadata belongs
	// to: rename keeps a file's mtime.
	Size        int64 `json:"size"`
	ModTimeNano int64 `json:"mtime_ns"`
}

// NewFilesystem returns a store keeping its objects under dir, creating dir
// if needed. Close it when done.
func NewFilesystem(dir string) (*FSStore, error) {
	if dir == "" {
		return nil, errs.Invalid("dir", "must not be empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob: filesystem store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: filesystem store: %w", err)
	}
	for _, d := range []string{fsObjects, fsMeta, fsTmp} {
		if err := root.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			root.Close()
			return nil, fmt.Errorf("blob: filesystem store: %w", err)
		}
	}
	s := &FSStore{root: root, seed: maphash.MakeSeed()}
	s.cleanTmp(time.Now().Add(-fsTmpMaxAge))
	return s, nil
}

// Close releases the directory.
func (s *FSStore) Close() error { return s.root.Close() }

// cleanTmp removes files older than before from tmp/, best effort.
func (s *FSStore) cleanTmp(before time.Time) {
	d, err := s.root.Open(fsTmp)
	if err != nil {
		return
	}
	defer d.Close()
	entries, _ := d.ReadDir(-1)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			s.root.Remove(path.Join(fsTmp, e.Name()))
		}
	}
}

// lock returns the lock of key. Holding it (write) makes a key's commit
// (object and metadata renames), its deletion, and the pruning of an empty
// directory of that name exclusive; readers hold it (read) while they open
// the object and its metadata, so they see a matching pair.
func (s *FSStore) lock(key string) *sync.RWMutex {
	return &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
}

func objPath(key string) string  { return fsObjects + "/" + key }
func metaPath(key string) string { return fsMeta + "/" + key }

// Put implements Store.
func (s *FSStore) Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, opErr("put", key, err)
	}
	opts, err := opts.normalize()
	if err != nil {
		return Info{}, opErr("put", key, err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, opErr("put", key, err)
	}

	tmpObj, fi, d, err := s.writeTemp(func(w io.Writer) (*digestReader, error) {
		d := newDigestReader(ctx, r, opts)
		_, err := io.Copy(w, d)
		if d.err != nil {
			return d, d.err // the stream's failure, not the file's
		}
		if err == nil {
			err = d.done()
		}
		return d, err
	})
	if err != nil {
		return Info{}, opErr("put", key, err)
	}
	defer s.root.Remove(tmpObj) // no-op once renamed

	meta, err := json.Marshal(fsMetaFile{
		SHA256:      d.sum,
		ContentType: opts.ContentType,
		Size:        fi.Size(),
		ModTimeNano: fi.ModTime().UnixNano(),
	})
	if err != nil {
		return Info{}, opErr("put", key, err)
	}
	tmpMeta, _, _, err := s.writeTemp(func(w io.Writer) (*digestReader, error) {
		_, err := w.Write(meta)
		return nil, err
	})
	if err != nil {
		return Info{}, opErr("put", key, err)
	}
	defer s.root.Remove(tmpMeta)

	// A caller that gave up while the last bytes were written does not get
	// an object it no longer expects.
	if err := ctx.Err(); err != nil {
		return Info{}, opErr("put", key, err)
	}
	if err := s.commit(key, tmpObj, tmpMeta); err != nil {
		return Info{}, opErr("put", key, err)
	}
	return Info{
		Key:         key,
		Size:        d.n,
		SHA256:      d.sum,
		ContentType: opts.ContentType,
		ModTime:     fi.ModTime(),
	}, nil
}

// writeTemp creates a file in tmp/, lets write fill it, fsyncs and closes
// it, and returns its name and FileInfo. On error the file is removed.
func (s *FSStore) writeTemp(write func(io.Writer) (*digestReader, error)) (string, os.FileInfo, *digestReader, error) {
	name := path.Join(fsTmp, rand.Text())
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, nil, err
	}
	d, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.root.Remove(name)
		return "", nil, nil, err
	}
	return name, fi, d, nil
}

// commit moves the object and then its metadata into place.
func (s *FSStore) commit(key, tmpObj, tmpMeta string) error {
	l := s.lock(key)
	l.Lock()
	defer l.Unlock()
	if err := s.renameInto(tmpObj, objPath(key)); err != nil {
		return err
	}
	if err := s.renameInto(tmpMeta, metaPath(key)); err != nil {
		// The new object is in place and the old metadata, if any, no
		// longer matches it: Stat reports an unknown digest.
		return err
	}
	s.syncDir(path.Dir(objPath(key)))
	s.syncDir(path.Dir(metaPath(key)))
	return nil
}

// renameInto renames src to dst, creating dst's parent directories.
func (s *FSStore) renameInto(src, dst string) error {
	var err error
	for range fsRetries {
		if err = s.root.MkdirAll(path.Dir(dst), 0o700); err != nil {
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue // a parent was pruned meanwhile
			case errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist):
				return errKeyClash // a parent is an object
			}
			return err
		}
		if err = s.root.Rename(src, dst); err == nil {
			return nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // the parent was pruned meanwhile
		}
		// dst may be a directory: fine when it is empty, a leftover of
		// deleted keys under it (the caller holds dst's lock, so no Put
		// can make it a file meanwhile).
		if fi, serr := s.root.Lstat(dst); serr == nil && fi.IsDir() {
			if s.root.Remove(dst) != nil {
				return errKeyClash
			}
			continue
		}
		return err
	}
	return err
}

// syncDir makes a rename into dir durable, best effort.
func (s *FSStore) syncDir(dir string) {
	if d, err := s.root.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Get implements Store.
func (s *FSStore) Get(ctx context.Context, key string, rng *Range) (io.ReadCloser, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	if err := rng.check(); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	l := s.lock(key)
	l.RLock()
	f, err := s.root.Open(objPath(key))
	if err != nil {
		l.RUnlock()
		return nil, Info{}, opErr("get", key, notFound(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist // a directory: a prefix of other keys
	}
	var info Info
	if err == nil {
		info = s.info(key, fi)
	}
	l.RUnlock()
	if err != nil {
		f.Close()
		return nil, Info{}, opErr("get", key, notFound(err))
	}
	if rng == nil {
		return f, info, nil
	}
	first, last, err := rng.bounds(info.Size)
	if err != nil {
		f.Close()
		return nil, Info{}, opErr("get", key, err)
	}
	return sectionReadCloser{io.NewSectionReader(f, first, last-first+1), f}, info, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	io.Closer
}

// Stat implements Store.
func (s *FSStore) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, opErr("stat", key, err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, opErr("stat", key, err)
	}
	l := s.lock(key)
	l.RLock()
	defer l.RUnlock()
	fi, err := s.root.Stat(objPath(key))
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return Info{}, opErr("stat", key, notFound(err))
	}
	return s.info(key, fi), nil
}

// info builds the Info of key's object file fi, with the digest and content
// type of its metadata when that metadata belongs to fi.
func (s *FSStore) info(key string, fi os.FileInfo) Info {
	info := Info{Key: key, Size: fi.Size(), ContentType: DefaultContentType, ModTime: fi.ModTime()}
	b, err := s.root.ReadFile(metaPath(key))
	if err != nil {
		return info
	}
	var m fsMetaFile
	if json.Unmarshal(b, &m) != nil || m.Size != fi.Size() || m.ModTimeNano != fi.ModTime().UnixNano() {
		return info
	}
	if isHexDigest(m.SHA256) {
		info.SHA256 = m.SHA256
	}
	if m.ContentType != "" {
		info.ContentType = m.ContentType
	}
	return info
}

// notFound turns the errors of opening a missing object into
// errs.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return errs.ErrNotFound
	}
	return err
}

// Delete implements Store.
func (s *FSStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return opErr("delete", key, err)
	}
	if err := ctx.Err(); err != nil {
		return opErr("delete", key, err)
	}
	l := s.lock(key)
	l.Lock()
	// Metadata first: a crash in between leaves an object without
	// metadata, which reads fine, rather than metadata without an object.
	err := s.removeFile(metaPath(key))
	if err == nil {
		err = s.removeFile(objPath(key))
	}
	l.Unlock()
	if err != nil {
		return opErr("delete", key, err)
	}
	s.prune(fsObjects, key)
	s.prune(fsMeta, key)
	return nil
}

// removeFile removes the regular file name; a missing file or a directory
// (a prefix of other keys, not an object) is left alone.
func (s *FSStore) removeFile(name string) error {
	fi, err := s.root.Lstat(name)
	if err != nil {
		if errors.Is(notFound(err), errs.ErrNotFound) {
			return nil
		}
		return err
	}
	if fi.IsDir() {
		return nil
	}
	if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// prune removes the directories of tree that held key and are now empty,
// so that their names can be keys again.
func (s *FSStore) prune(tree, key string) {
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		name := tree + "/" + dir
		l := s.lock(dir)
		l.Lock()
		fi, err := s.root.Lstat(name)
		if err == nil && fi.IsDir() {
			err = s.root.Remove(name) // fails when not empty
		} else if err == nil {
			err = fs.ErrExist
		}
		l.Unlock()
		if err != nil {
			return
		}
	}
}

// List implements Store.
func (s *FSStore) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := ValidatePrefix(prefix); err != nil {
		return opErr("list", prefix, err)
	}
	err := s.walk(ctx, "", prefix, fn)
	var fnErr fnError
	if errors.As(err, &fnErr) {
		return fnErr.err
	}
	if err != nil {
		return opErr("list", prefix, err)
	}
	return nil
}

// fnError carries List's callback error through walk untouched.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// walk calls fn for the objects under the directory of key prefix dir ("" at
// the top) whose keys start with prefix, in key order.
func (s *FSStore) walk(ctx context.Context, dir, prefix string, fn func(Info) error) error {
	name := fsObjects
	if dir != "" {
		name += "/" + dir
	}
	d, err := s.root.Open(name)
	if err != nil {
		if errors.Is(notFound(err), errs.ErrNotFound) {
			return nil // pruned meanwhile
		}
		return err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	// Keys below a directory "a" all start with "a/": sorting directories
	// as name+"/" among file names gives the lexical order of full keys
	// ("a-b" < "a/c" < "a0").
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return cmp.Compare(sortName(a), sortName(b)) })

	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := e.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		if ValidateKey(key) != nil {
			continue // not written by this store
		}
		if e.IsDir() {
			if sub := key + "/"; strings.HasPrefix(sub, prefix) || strings.HasPrefix(prefix, sub) {
				if err := s.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			return err
		}
		if err := fn(Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return fnError{err}
		}
	}
	return nil
}

// Ping implements Store.
func (s *FSStore) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob ping: %w", err)
	}
	for _, d := range []string{fsObjects, fsMeta, fsTmp} {
		fi, err := s.root.Stat(d)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s is not a directory", d)
		}
		if err != nil {
			return fmt.Errorf("blob ping: filesystem store: %w: %w", errs.ErrUnavailable, err)
		}
	}
	return nil
}
