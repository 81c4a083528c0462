package conf

import (
	"encoding"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Struct tags read by this package.
const (
	tagKey     = "koanf"
	tagDynamic = "dynamic"
	tagSecret  = "secret"
	redacted   = "REDACTED"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	validatorType       = reflect.TypeFor[interface{ Validate() error }]()
)

// field is one config field of a struct type.
type field struct {
	name    string
	index   []int
	dynamic bool
	secret  bool
}

// fieldsOf lists the config fields of struct type t. An embedded struct
// without a koanf tag is squashed: its fields belong to t.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup(tagKey)
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && !hasTag && f.Type.Kind() == reflect.Struct {
			for _, sub := range fieldsOf(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{
			name:    name,
			index:   []int{i},
			dynamic: f.Tag.Get(tagDynamic) == "true",
			secret:  f.Tag.Get(tagSecret) == "true",
		})
	}
	return out
}

func fieldByName(t reflect.Type, name string) (field, bool) {
	for _, f := range fieldsOf(t) {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// isObject reports whether t is decoded key by key (a struct that does not
// decode itself from text).
func isObject(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType)
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// secretName reports whether the last key segment names a secret: it ends in token,
// password, secret or key (or their plurals), as in admin.token, stress_key or api_keys.
// Settings about secrets, such as token_ttl, are not secrets themselves.
func secretName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), "s")
	for _, w := range []string{"token", "password", "secret", "key"} {
		if strings.HasSuffix(name, w) {
			return true
		}
	}
	return false
}

// isSecret reports whether a value of type t under the key segment name is
// secret: tagged so, or not an object and named like a secret.
func isSecret(name string, t reflect.Type, tagged bool) bool {
	return tagged || (!isObject(deref(t)) && secretName(name))
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

// accepts reports whether the dotted key names a field of t (or an entry of
// a map field), so env vars and flags that are not config are ignored.
func accepts(t reflect.Type, segs []string) bool {
	t = deref(t)
	if len(segs) == 0 {
		return true
	}
	switch {
	case t.Kind() == reflect.Map:
		return true
	case isObject(t):
		f, ok := fieldByName(t, segs[0])
		if !ok {
			return false
		}
		return accepts(t.FieldByIndex(f.index).Type, segs[1:])
	default:
		return false
	}
}

// decoder converts the merged raw map into a typed struct, reporting the
// source of any bad value through origin.
type decoder struct {
	origin func(key string) string
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (d *decoder) bad(key string, raw any, t reflect.Type, secret bool, detail string) error {
	p := fmt.Sprintf("cannot parse %s as %s", describe(raw, secret), typeName(t))
	if detail != "" {
		p += ": " + detail
	}
	return &Error{Source: d.origin(key), Key: key, Problem: p, Err: ErrBadValue}
}

func describe(raw any, secret bool) string {
	if secret {
		return redacted
	}
	switch r := raw.(type) {
	case string:
		if len(r) > 64 {
			r = r[:64] + "..."
		}
		return strconv.Quote(r)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	default:
		s := fmt.Sprint(r)
		if len(s) > 64 {
			s = s[:64] + "..."
		}
		return s
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case isObject(t) || t.Kind() == reflect.Map:
		return "object"
	case t.Kind() == reflect.Slice:
		return "list"
	default:
		return t.String()
	}
}

// scalarString renders a scalar as the string a user wrote.
func scalarString(raw any) (string, bool) {
	switch r := raw.(type) {
	case string:
		return r, true
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(r), true
	case time.Time:
		return r.Format(time.RFC3339Nano), true
	default:
		return "", false
	}
}

func toInt(raw any) (int64, bool) {
	switch r := raw.(type) {
	case int:
		return int64(r), true
	case int64:
		return r, true
	case uint64:
		if r > 1<<63-1 {
			return 0, false
		}
		return int64(r), true
	case float64:
		if r != float64(int64(r)) {
			return 0, false
		}
		return int64(r), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(r), 0, 64)
		return n, err == nil
	default:
		return 0, false
	}
}

func toUint(raw any) (uint64, bool) {
	switch r := raw.(type) {
	case uint64:
		return r, true
	case string:
		n, err := strconv.ParseUint(strings.TrimSpace(r), 0, 64)
		return n, err == nil
	default:
		n, ok := toInt(raw)
		return uint64(n), ok && n >= 0
	}
}

func toFloat(raw any) (float64, bool) {
	switch r := raw.(type) {
	case float64:
		return r, true
	case int:
		return float64(r), true
	case int64:
		return float64(r), true
	case uint64:
		return float64(r), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		return f, err == nil
	default:
		return 0, false
	}
}

// decode sets v (addressable) from raw. A nil raw leaves v (its default) alone.
func (d *decoder) decode(key string, raw any, v reflect.Value, secret bool) error {
	if raw == nil {
		return nil
	}
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.decode(key, raw, v.Elem(), secret)
	}
	if t == durationType {
		s, ok := raw.(string)
		if !ok {
			return d.bad(key, raw, t, secret, `want a string such as "150ms"`)
		}
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return d.bad(key, raw, t, secret, "")
		}
		v.SetInt(int64(dur))
		return nil
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		s, ok := scalarString(raw)
		if !ok {
			return d.bad(key, raw, t, secret, "")
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			detail := err.Error()
			if secret {
				detail = ""
			}
			return d.bad(key, raw, t, secret, detail)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return d.decodeStruct(key, raw, v, secret)
	case reflect.Map:
		return d.decodeMap(key, raw, v, secret)
	case reflect.Slice:
		return d.decodeSlice(key, raw, v, secret)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return d.bad(key, raw, t, secret, "unsupported field type")
		}
		v.Set(reflect.ValueOf(raw))
	case reflect.String:
		s, ok := scalarString(raw)
		if !ok {
			return d.bad(key, raw, t, secret, "")
		}
		v.SetString(s)
	case reflect.Bool:
		switch r := raw.(type) {
		case bool:
			v.SetBool(r)
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(r))
			if err != nil {
				return d.bad(key, raw, t, secret, "")
			}
			v.SetBool(b)
		default:
			return d.bad(key, raw, t, secret, "")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := toInt(raw)
		if !ok {
			return d.bad(key, raw, t, secret, "")
		}
		if v.OverflowInt(n) {
			return d.bad(key, raw, t, secret, "out of range")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := toUint(raw)
		if !ok {
			return d.bad(key, raw, t, secret, "")
		}
		if v.OverflowUint(n) {
			return d.bad(key, raw, t, secret, "out of range")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, ok := toFloat(raw)
		if !ok {
			return d.bad(key, raw, t, secret, "")
		}
		if v.OverflowFloat(f) {
			return d.bad(key, raw, t, secret, "out of range")
		}
		v.SetFloat(f)
	default:
		return d.bad(key, raw, t, secret, "unsupported field type")
	}
	return nil
}

func (d *decoder) decodeStruct(key string, raw any, v reflect.Value, secret bool) error {
	m, ok := raw.(map[string]any)
	if !ok {
		return d.bad(key, raw, v.Type(), secret, "")
	}
	fields := fieldsOf(v.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	for _, k := range sortedKeys(m) {
		sub := join(key, k)
		f, ok := byName[k]
		if !ok {
			return &Error{Source: d.origin(sub), Key: sub, Problem: "unknown key", Err: ErrUnknownKey}
		}
		fv := v.FieldByIndex(f.index)
		if err := d.decode(sub, m[k], fv, secret || isSecret(k, fv.Type(), f.secret)); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeMap(key string, raw any, v reflect.Value, secret bool) error {
	t := v.Type()
	m, ok := raw.(map[string]any)
	if !ok || t.Key().Kind() != reflect.String {
		return d.bad(key, raw, t, secret, "")
	}
	// Merge into a copy of the default entries, as the layers merge with
	// each other; never write into the caller's default map.
	out := reflect.MakeMapWithSize(t, v.Len()+len(m))
	iter := v.MapRange()
	for iter.Next() {
		out.SetMapIndex(iter.Key(), iter.Value())
	}
	for _, k := range sortedKeys(m) {
		ev := reflect.New(t.Elem()).Elem()
		if err := d.decode(join(key, k), m[k], ev, secret || isSecret(k, t.Elem(), false)); err != nil {
			return err
		}
		out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
	}
	v.Set(out)
	return nil
}

func (d *decoder) decodeSlice(key string, raw any, v reflect.Value, secret bool) error {
	t := v.Type()
	var items []any
	switch r := raw.(type) {
	case []any:
		items = r
	case string:
		// Env vars and flags give lists as "a,b,c".
		if strings.TrimSpace(r) != "" {
			for _, s := range strings.Split(r, ",") {
				items = append(items, strings.TrimSpace(s))
			}
		}
	default:
		return d.bad(key, raw, t, secret, "")
	}
	out := reflect.MakeSlice(t, len(items), len(items))
	for i, it := range items {
		if err := d.decode(fmt.Sprintf("%s[%d]", key, i), it, out.Index(i), secret); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

// validate calls Validate on every struct reachable from v, inner ones first.
func (d *decoder) validate(key string, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return d.validate(key, v.Elem())
	case reflect.Struct:
		if isObject(v.Type()) {
			for _, f := range fieldsOf(v.Type()) {
				if err := d.validate(join(key, f.name), v.FieldByIndex(f.index)); err != nil {
					return err
				}
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := d.validate(fmt.Sprintf("%s[%d]", key, i), v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			if err := d.validate(join(key, fmt.Sprint(k)), v.MapIndex(k)); err != nil {
				return err
			}
		}
	}
	var err error
	switch {
	case v.CanAddr() && v.Addr().Type().Implements(validatorType):
		err = v.Addr().Interface().(interface{ Validate() error }).Validate()
	case v.Kind() != reflect.Pointer && v.Kind() != reflect.Interface && v.Type().Implements(validatorType):
		err = v.Interface().(interface{ Validate() error }).Validate()
	}
	if err != nil {
		return &Error{Source: d.origin(key), Key: key, Problem: err.Error(), Err: fmt.Errorf("%w: %w", ErrInvalid, err)}
	}
	return nil
}

// leaf is one compared value of a config: a non-object field.
type leaf struct {
	value   reflect.Value
	dynamic bool
}

// leaves flattens v into its non-object fields by dotted key.
func leaves(key string, v reflect.Value, dynamic bool, out map[string]leaf) {
	switch {
	case v.Kind() == reflect.Pointer && !v.IsNil() && isObject(v.Type().Elem()):
		leaves(key, v.Elem(), dynamic, out)
	case v.Kind() == reflect.Struct && isObject(v.Type()):
		for _, f := range fieldsOf(v.Type()) {
			leaves(join(key, f.name), v.FieldByIndex(f.index), dynamic || f.dynamic, out)
		}
	default:
		out[key] = leaf{value: v, dynamic: dynamic}
	}
}

// diff returns the sorted keys whose values differ between a and b, and
// those of them not tagged dynamic.
func diff(a, b reflect.Value) (changed, static []string) {
	la, lb := map[string]leaf{}, map[string]leaf{}
	leaves("", a, false, la)
	leaves("", b, false, lb)
	keys := map[string]bool{}
	for k := range la {
		keys[k] = true
	}
	for k := range lb {
		keys[k] = true
	}
	for k := range keys {
		x, okx := la[k]
		y, oky := lb[k]
		if okx && oky && reflect.DeepEqual(x.value.Interface(), y.value.Interface()) {
			continue
		}
		changed = append(changed, k)
		if !(okx && x.dynamic) && !(oky && y.dynamic) {
			static = append(static, k)
		}
	}
	sort.Strings(changed)
	sort.Strings(static)
	return changed, static
}

// redact renders v as plain maps, lists and scalars with secrets replaced.
func redact(v reflect.Value, secret bool) any {
	if secret {
		return redacted
	}
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return nil
	}
	t := v.Type()
	switch {
	case t == durationType:
		return time.Duration(v.Int()).String()
	case t.Implements(textMarshalerType):
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return fmt.Sprintf("!(%v)", err)
		}
		return string(b)
	case v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface:
		return redact(v.Elem(), false)
	case isObject(t):
		m := map[string]any{}
		for _, f := range fieldsOf(t) {
			fv := v.FieldByIndex(f.index)
			m[f.name] = redact(fv, isSecret(f.name, fv.Type(), f.secret))
		}
		return m
	case t.Kind() == reflect.Map:
		if v.IsNil() {
			return nil
		}
		m := map[string]any{}
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			m[k] = redact(iter.Value(), isSecret(k, t.Elem(), false))
		}
		return m
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = redact(v.Index(i), false)
		}
		return out
	case v.Kind() == reflect.String:
		return RedactURL(v.String())
	default:
		return v.Interface()
	}
}

// RedactURL hides the password of a URL-shaped value ("postgres://app:s3cret@db/app" →
// "postgres://app:xxxxx@db/app"), so connection strings can be shown and logged; any other
// string is returned as it is.
func RedactURL(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}
