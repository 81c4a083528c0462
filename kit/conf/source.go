package conf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/knadh/koanf/parsers/yaml"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Source is one layer of configuration that can change at run time.
type Source interface {
	// Name identifies the source in errors, e.g. a file path or "etcd:KEY".
	Name() string
	// Load returns the source's current values as nested maps.
	Load(ctx context.Context) (map[string]any, error)
	// Watch blocks until ctx is done, calling onChange once as soon as the
	// watch is established (so that changes between Load and Watch are not
	// lost) and then after every change. onChange may be called spuriously.
	// Watch returns nil when ctx is done, or an error if it cannot watch.
	Watch(ctx context.Context, onChange func()) error
}

var (
	_ Source = (*fileSource)(nil)
	_ Source = (*etcdSource)(nil)
)

func parseYAML(b []byte) (map[string]any, error) {
	m, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

type fileSource struct {
	path string
}

// NewFileSource returns a Source reading the YAML file at path. Its Watch
// watches the file's directory, so replacing the file by rename (as editors
// and config management do) or swapping a symlink (Kubernetes ConfigMaps) is
// seen as a change.
func NewFileSource(path string) Source { return &fileSource{path: filepath.Clean(path)} }

func (f *fileSource) Name() string { return f.path }

func (f *fileSource) Load(context.Context) (map[string]any, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		problem := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			problem = "file does not exist"
		}
		return nil, &Error{Source: f.path, Problem: problem, Err: err}
	}
	m, err := parseYAML(b)
	if err != nil {
		return nil, &Error{Source: f.path, Problem: "invalid YAML: " + err.Error(), Err: err}
	}
	return m, nil
}

func (f *fileSource) Watch(ctx context.Context, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	dir, base := filepath.Dir(f.path), filepath.Base(f.path)
	if err := w.Add(dir); err != nil {
		return err
	}
	// Behind a symlink the real change is elsewhere in the directory (for a
	// ConfigMap, the ..data link), so any event counts.
	fi, err := os.Lstat(f.path)
	symlink := err == nil && fi.Mode()&fs.ModeSymlink != 0
	onChange()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("fsnotify: events closed")
			}
			if ev.Op != fsnotify.Chmod && (symlink || filepath.Base(ev.Name) == base) {
				onChange()
			}
		case _, ok := <-w.Errors:
			if !ok {
				return errors.New("fsnotify: errors closed")
			}
			// Usually an event queue overflow: events were lost, so re-read.
			onChange()
		}
	}
}

type etcdSource struct {
	cli *clientv3.Client
	key string
}

// NewEtcdSource returns a Source reading YAML from the value at key in etcd.
// A missing key is an empty layer. Load bounds its request to 10s when ctx
// has no deadline. Watch uses an etcd watch and re-establishes it (with a
// one-second pause) when it breaks.
func NewEtcdSource(cli *clientv3.Client, key string) Source {
	return &etcdSource{cli: cli, key: key}
}

func (s *etcdSource) Name() string { return "etcd:" + s.key }

func (s *etcdSource) Load(ctx context.Context) (map[string]any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	resp, err := s.cli.Get(ctx, s.key)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return map[string]any{}, nil
	}
	m, err := parseYAML(resp.Kvs[0].Value)
	if err != nil {
		return nil, &Error{Source: s.Name(), Problem: "invalid YAML: " + err.Error(), Err: err}
	}
	return m, nil
}

func (s *etcdSource) Watch(ctx context.Context, onChange func()) error {
	for first := true; ; first = false {
		err := s.watchOnce(ctx, onChange)
		if ctx.Err() != nil {
			return nil
		}
		if first && err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// watchOnce watches from the revision of a fresh read, so no change after
// that read is missed, until the watch breaks or ctx is done.
func (s *etcdSource) watchOnce(ctx context.Context, onChange func()) error {
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := s.cli.Get(gctx, s.key)
	cancel()
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, s.key, clientv3.WithRev(resp.Header.Revision+1))
	onChange()
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		if len(wr.Events) > 0 {
			onChange()
		}
	}
	return nil
}
