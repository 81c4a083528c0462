// Package conf loads a service's configuration into a typed struct from
// layered sources (struct defaults, a YAML file, remote sources such as etcd,
// REDLINE_* environment variables and command-line flags), validates it,
// reloads it when the file or a remote source changes, and renders it with
// secrets redacted.
//
// # Struct tags
//
//   - koanf:"name" names the key of a field (default: the lower-cased field
//     name; "-" skips the field). Nested structs nest keys: http.timeout.
//     An embedded struct without a tag is squashed into its parent.
//   - dynamic:"true" marks a field (or a whole nested struct) as safe to
//     change at run time. A reload that changes other fields still reaches
//     Watch's callback, but those keys are listed in Update.Static and logged
//     as needing a restart.
//   - secret:"true" marks a field whose value must never be shown. Besides
//     tagged fields, any non-struct value whose key's last segment ends in
//     "token", "password", "secret" or "key", or their plurals
//     (case-insensitive: stress_key, admin.token, api_keys, but not
//     token_ttl) is treated as secret: Redacted shows
//     "REDACTED" and errors do not print its value.
//
// # Decoding
//
// Durations are strings such as "150ms"; numbers, bools and strings convert
// from their text form (so env vars and flags work); lists come from YAML
// sequences or from comma-separated text. Maps merge entry by entry across
// all layers, defaults included; a list from a higher layer replaces the
// whole list below it. A key in a source that dst has no field for
// is an error (typos must not pass silently), except in the environment and
// flags, where names that are not config keys are ignored. After decoding,
// Validate() error is called on every struct that has it, inner structs
// first. Every problem is reported as an *Error naming the source, the key
// and the problem.
package conf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// DefaultEnvPrefix is the environment prefix used unless WithEnv says otherwise.
const DefaultEnvPrefix = "REDLINE_"

// Option configures Load.
type Option func(*options)

type options struct {
	file      string
	envPrefix string
	flags     *pflag.FlagSet
	sources   []Source
	onError   func(error)
	logger    *slog.Logger
	debounce  time.Duration
}

// WithFile layers the YAML file at path above the struct defaults. The file
// must exist; an empty path means no file.
func WithFile(path string) Option { return func(o *options) { o.file = path } }

// WithEnv sets the environment prefix (default DefaultEnvPrefix, "REDLINE_");
// an empty prefix turns environment loading off. The name after the prefix is
// lower-cased and a double underscore separates levels, because keys contain
// single underscores: REDLINE_HTTP__READ_TIMEOUT sets http.read_timeout.
// Variables that do not name a config key are ignored.
func WithEnv(prefix string) Option { return func(o *options) { o.envPrefix = prefix } }

// WithFlags layers the flags of fs that were set on the command line (Changed)
// above everything else. A flag named "http.timeout" sets key http.timeout;
// flags that do not name a config key are ignored.
func WithFlags(fs *pflag.FlagSet) Option { return func(o *options) { o.flags = fs } }

// WithSource layers s above the file and below the environment. Several
// sources layer in the order given.
func WithSource(s Source) Option { return func(o *options) { o.sources = append(o.sources, s) } }

// OnError sets the function told about reloads that Watch rejected (the old
// config stays in force) and about watches that failed. The default logs them
// at warning level.
func OnError(fn func(error)) Option { return func(o *options) { o.onError = fn } }

// WithLogger sets the logger for reload warnings (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithDebounce sets how long Watch waits for a burst of change events to
// settle before reloading (default 100ms).
func WithDebounce(d time.Duration) Option { return func(o *options) { o.debounce = d } }

// Config is a loaded configuration. It remembers its sources so that Watch
// can reload them. Its methods are safe for concurrent use.
type Config struct {
	opts    options
	typ     reflect.Type
	sources []Source // file first, then WithSource ones

	mu       sync.RWMutex
	current  any // latest accepted value (pointer to struct)
	closed   bool
	watching bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Update is one accepted reload, handed to Watch's callback.
type Update struct {
	// Value is a fresh, validated copy of the config: a pointer of the same
	// type as dst.
	Value any
	// Changed lists the keys whose values differ from the previous config,
	// sorted.
	Changed []string
	// Static lists the changed keys that are not tagged dynamic:"true". The
	// owner should keep running with the old values for these; they take
	// effect on restart. Watch also logs them as a warning.
	Static []string
}

// Load fills dst, a pointer to a struct with koanf tags pre-filled with
// defaults, from (lowest to highest precedence) dst's defaults, the YAML file,
// extra sources, the environment and changed flags, then validates it. Any
// problem in a source or a value is an *Error. Remote sources are read with
// context.Background(); use LoadContext to bound them.
func Load(dst any, opts ...Option) (*Config, error) {
	return LoadContext(context.Background(), dst, opts...)
}

// LoadContext is Load with a context for reading remote sources.
func LoadContext(ctx context.Context, dst any, opts ...Option) (*Config, error) {
	o := options{envPrefix: DefaultEnvPrefix, logger: slog.Default(), debounce: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if o.onError == nil {
		l := o.logger
		o.onError = func(err error) { l.Warn("config reload rejected", "err", err) }
	}
	t, err := targetType(dst)
	if err != nil {
		return nil, err
	}
	c := &Config{opts: o, typ: t}
	if o.file != "" {
		c.sources = append(c.sources, NewFileSource(o.file))
	}
	c.sources = append(c.sources, o.sources...)
	if err := c.load(ctx, dst); err != nil {
		return nil, err
	}
	c.current = dst
	return c, nil
}

func targetType(dst any) (reflect.Type, error) {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: got %T", ErrBadTarget, dst)
	}
	return v.Type(), nil
}

// origin records which layer set a flat key.
type origin struct {
	source string
	layer  int
}

// load reads every layer, merges them and decodes the result into dst.
func (c *Config) load(ctx context.Context, dst any) error {
	merged := koanf.New(".")
	origins := map[string]origin{}
	layer := 0
	merge := func(m map[string]any, delim string, name func(key string) string) error {
		layer++
		lk := koanf.New(".")
		if err := lk.Load(confmap.Provider(m, delim), nil); err != nil {
			return err
		}
		for _, k := range lk.Keys() {
			origins[k] = origin{source: name(k), layer: layer}
		}
		return merged.Merge(lk)
	}

	for _, s := range c.sources {
		m, err := s.Load(ctx)
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return ce
			}
			return &Error{Source: s.Name(), Problem: err.Error(), Err: err}
		}
		name := s.Name()
		if err := merge(m, "", func(string) string { return name }); err != nil {
			return &Error{Source: name, Problem: err.Error(), Err: err}
		}
	}

	if p := c.opts.envPrefix; p != "" {
		vars := map[string]string{}
		m, err := env.ProviderWithValue(p, ".", func(name, value string) (string, any) {
			key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, p)), "__", ".")
			if !accepts(c.typ, strings.Split(key, ".")) {
				return "", nil
			}
			vars[key] = name
			return key, value
		}).Read()
		if err != nil {
			return &Error{Source: "env " + p + "*", Problem: err.Error(), Err: err}
		}
		if err := merge(m, "", func(k string) string { return "env " + vars[k] }); err != nil {
			return &Error{Source: "env " + p + "*", Problem: err.Error(), Err: err}
		}
	}

	if fs := c.opts.flags; fs != nil {
		m := map[string]any{}
		fs.Visit(func(f *pflag.Flag) {
			if !accepts(c.typ, strings.Split(f.Name, ".")) {
				return
			}
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				items := []any{}
				for _, s := range sv.GetSlice() {
					items = append(items, s)
				}
				m[f.Name] = items
				return
			}
			m[f.Name] = f.Value.String()
		})
		if err := merge(m, ".", func(k string) string { return "flag --" + k }); err != nil {
			return &Error{Source: "flags", Problem: err.Error(), Err: err}
		}
	}

	d := &decoder{origin: func(key string) string { return originOf(origins, key) }}
	v := reflect.ValueOf(dst).Elem()
	if err := d.decode("", merged.Raw(), v, false); err != nil {
		return err
	}
	return d.validate("", v)
}

// originOf names the source of key: the layer that set it, else the highest
// layer that set a key below it, else the layer that set a key above it.
func originOf(origins map[string]origin, key string) string {
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	if o, ok := origins[key]; ok {
		return o.source
	}
	best, bestKey := origin{layer: -1}, ""
	for k, o := range origins {
		if key != "" && !strings.HasPrefix(k, key+".") {
			continue
		}
		if o.layer > best.layer || (o.layer == best.layer && k < bestKey) {
			best, bestKey = o, k
		}
	}
	if best.layer >= 0 {
		return best.source
	}
	for p := key; ; {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			return "defaults"
		}
		p = p[:i]
		if o, ok := origins[p]; ok {
			return o.source
		}
	}
}

// Redacted returns the current config (the latest accepted reload, including
// defaults) as nested maps keyed like the sources, with durations as strings
// and secrets replaced by "REDACTED". It is meant for admin endpoints and logs.
func (c *Config) Redacted() map[string]any {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, _ := redact(reflect.ValueOf(c.current).Elem(), false).(map[string]any)
	return m
}

// Watch reloads the config whenever the file or a remote source changes, and
// returns once every source is being watched. On each change (after a short
// debounce) it re-reads all layers into fresh(), which must return a new
// pointer of dst's type filled with defaults, and validates it. If that fails
// the error goes to OnError and the old config stays. If it succeeds and
// something changed, apply is called with the new value and the changed keys;
// the owner decides what to apply (see Update.Static). apply is called from
// one goroutine, never concurrently. Watching stops when ctx is done or at
// Close. A Config can be watched once; with no file and no sources Watch
// does nothing.
func (c *Config) Watch(ctx context.Context, fresh func() any, apply func(Update)) error {
	if t, err := targetType(fresh()); err != nil || t != c.typ {
		return fmt.Errorf("config: Watch: fresh() must return %v: %w", c.typ, ErrBadTarget)
	}
	if len(c.sources) == 0 {
		return nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.watching {
		c.mu.Unlock()
		return errors.New("config: Watch called twice")
	}
	c.watching = true
	ctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	c.mu.Unlock()

	trigger := make(chan struct{}, 1)
	ready := make(chan error, len(c.sources))
	for _, s := range c.sources {
		c.wg.Go(func() {
			var once sync.Once
			err := s.Watch(ctx, func() {
				once.Do(func() { ready <- nil })
				select {
				case trigger <- struct{}{}:
				default:
				}
			})
			if err != nil {
				err = fmt.Errorf("config: watch %s: %w", s.Name(), err)
			}
			started := true
			once.Do(func() { started = false; ready <- err })
			if started && err != nil && ctx.Err() == nil {
				c.opts.onError(err)
			}
		})
	}
	for range c.sources {
		if err := <-ready; err != nil {
			cancel()
			c.wg.Wait()
			return err
		}
	}
	c.wg.Go(func() { c.loop(ctx, trigger, fresh, apply) })
	return nil
}

func (c *Config) loop(ctx context.Context, trigger <-chan struct{}, fresh func() any, apply func(Update)) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
			timer.Reset(c.opts.debounce)
		case <-timer.C:
			c.reload(ctx, fresh, apply)
		}
	}
}

func (c *Config) reload(ctx context.Context, fresh func() any, apply func(Update)) {
	next := fresh()
	if err := c.load(ctx, next); err != nil {
		if ctx.Err() == nil {
			c.opts.onError(err)
		}
		return
	}
	c.mu.Lock()
	changed, static := diff(reflect.ValueOf(c.current).Elem(), reflect.ValueOf(next).Elem())
	if len(changed) > 0 {
		c.current = next
	}
	c.mu.Unlock()
	if len(changed) == 0 {
		return
	}
	if len(static) > 0 {
		c.opts.logger.Warn("config changed keys that are not dynamic; they take effect on restart", "keys", static)
	}
	apply(Update{Value: next, Changed: changed, Static: static})
}

// Close stops Watch and waits for its goroutines to exit.
func (c *Config) Close() error {
	c.mu.Lock()
	c.closed = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
	return nil
}
