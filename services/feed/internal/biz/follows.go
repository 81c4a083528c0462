package biz

import (
	"context"
	"encoding/binary"
	"slices"
	"strconv"
)

// Follows is whom a user follows, as a home-feed read needs it.
type Follows struct {
	// Following holds the followees' ids, sorted.
	Following []int64
	// Big holds the followees marked big, sorted: their notes are pulled.
	Big []int64
	// Complete says Following is all of them (the user follows at most MaxFollowing).
	Complete bool
}

func (f *Follows) follows(id int64) bool {
	_, ok := slices.BinarySearch(f.Following, id)
	return ok
}

// follows returns whom user follows, from the cache when it has them. A cache that fails
// is passed by: the graph answers instead. When the graph fails too, the read degrades to
// the inbox as it is (nothing filtered, nothing pulled) rather than fail, and nothing is
// cached.
func (uc *Usecase) follows(ctx context.Context, user int64) (*Follows, error) {
	key := "feed:follows:" + strconv.FormatInt(user, 10)
	if b, err := uc.cache.Get(ctx, key); err == nil {
		if f, ok := decodeFollows(b); ok {
			return f, nil
		}
	}
	ids, complete, err := uc.graph.Following(ctx, user, uc.cfg.MaxFollowing)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		uc.logger.Warn("feed: followees unavailable; serving the inbox alone", "user", user, "err", err)
		return &Follows{}, nil
	}
	slices.Sort(ids)
	f := &Follows{Following: slices.Compact(ids), Complete: complete}
	big, err := uc.store.BigAuthors(ctx, f.Following)
	if err != nil {
		return nil, err
	}
	for _, id := range f.Following {
		if big[id] && len(f.Big) < uc.cfg.MaxPulledAuthors {
			f.Big = append(f.Big, id)
		}
	}
	_ = uc.cache.Set(ctx, key, encodeFollows(f), uc.cfg.FollowTTL) // best effort: a miss costs one reload
	return f, nil
}

// encodeFollows packs f as varints: complete, then each list as its length and its ids.
func encodeFollows(f *Follows) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64*(len(f.Following)+len(f.Big)+2))
	complete := uint64(0)
	if f.Complete {
		complete = 1
	}
	b = binary.AppendUvarint(b, complete)
	for _, list := range [][]int64{f.Following, f.Big} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, id := range list {
			b = binary.AppendVarint(b, id)
		}
	}
	return b
}

// decodeFollows reads what encodeFollows wrote; false for anything else.
func decodeFollows(b []byte) (*Follows, bool) {
	complete, n := binary.Uvarint(b)
	if n <= 0 || complete > 1 {
		return nil, false
	}
	b = b[n:]
	f := &Follows{Complete: complete == 1}
	for _, list := range []*[]int64{&f.Following, &f.Big} {
		count, n := binary.Uvarint(b)
		if n <= 0 || count > uint64(len(b)) { // every id takes at least a byte
			return nil, false
		}
		b = b[n:]
		*list = make([]int64, 0, count)
		for range count {
			id, n := binary.Varint(b)
			if n <= 0 {
				return nil, false
			}
			b = b[n:]
			*list = append(*list, id)
		}
	}
	return f, len(b) == 0
}
