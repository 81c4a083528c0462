package cache

import (
	"testing"
	"time"
)

// TestRedisFailsFast: a Redis cache bounds dial, read, write and pool waits and retries
// once, so a Redis that is down costs a cache call half a second, not go-redis's 5 s dial
// times 3 retries; what the URL sets stays.
func TestRedisFailsFast(t *testing.T) {
	r, err := NewRedis("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.client.Close()
	o := r.client.Options()
	if o.DialTimeout != FailFastTimeout || o.ReadTimeout != FailFastTimeout || o.WriteTimeout != FailFastTimeout ||
		o.PoolTimeout != FailFastTimeout || o.MaxRetries != 1 {
		t.Fatalf("options = dial %v read %v write %v pool %v retries %d; want %v each and 1 retry",
			o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries, FailFastTimeout)
	}
	r2, err := NewRedis("redis://127.0.0.1:6379/0?dial_timeout=2s&max_retries=4")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.client.Close()
	if o := r2.client.Options(); o.DialTimeout != 2*time.Second || o.MaxRetries != 4 || o.ReadTimeout != FailFastTimeout {
		t.Fatalf("URL options were overridden: dial %v retries %d read %v", o.DialTimeout, o.MaxRetries, o.ReadTimeout)
	}
}
