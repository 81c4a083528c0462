// Package seed loads a realistic data set through the services' own APIs, so a newcomer to
// `redline up --seed` sees a populated feed and a shop: users with a long-tailed follower
// graph (a few creators with many followers, most with a handful), notes with tags and
// linked products, likes concentrated on popular notes, and products with SKUs and stock.
//
// Seeding is deterministic for a given Options.Seed and idempotent: users that exist are
// logged in rather than registered again, notes carry idempotency keys, follows and likes
// are idempotent, and stock is set, not added. Running it twice gives the same data.
package seed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

// DemoUser and DemoPassword sign in to the seeded data set; DemoUser follows the most
// popular creators, so its home feed is full. Every seeded user has DemoPassword.
const (
	DemoUser     = "demo"
	DemoPassword = "redline-demo"
)

// Clients are the services the seed writes through.
type Clients struct {
	Users        userv1.UserClient
	Notes        notev1.NoteClient
	Interactions interactionv1.InteractionClient
	// Shop, when set, seeds the catalog and stock too.
	Shop Shop
}

// Shop creates products with stock; it returns the new SPU ids. It is an interface so the
// seed does not depend on the shop's wire types.
type Shop interface {
	Products(ctx context.Context, n int, r *rand.Rand) ([]int64, error)
}

// Options size the data set. Zero values take the defaults.
type Options struct {
	Users    int // default 200
	Notes    int // default 1200
	Likes    int // default 6000
	Products int // default 40
	// Seed makes the data set reproducible. Default 1.
	Seed uint64
	// Workers bounds concurrent calls. Default 8.
	Workers int
	// Progress, when set, is told how far each stage got: stage is "users", "follows",
	// "products", "notes" or "likes".
	Progress func(stage string, done, total int)
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Users, 200)
	def(&o.Notes, 1200)
	def(&o.Likes, 6000)
	def(&o.Products, 40)
	def(&o.Workers, 8)
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Progress == nil {
		o.Progress = func(string, int, int) {}
	}
}

// Result counts what the data set holds.
type Result struct {
	Users, Follows, Notes, Likes, Products int
	// DemoUserID is the id of DemoUser.
	DemoUserID int64
	// UserIDs are the seeded users, DemoUser first.
	UserIDs []int64
}

// Run seeds the data set. It stops at the first error, with what it wrote kept (a rerun
// completes it).
func Run(ctx context.Context, c Clients, o Options) (*Result, error) {
	o.defaults()
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	res := &Result{}

	// The shop first: it is quick, and a newcomer walking through the README reaches the
	// cart while the users are still being registered.
	var products []int64
	var err error
	if c.Shop != nil {
		if products, err = c.Shop.Products(ctx, o.Products, r); err != nil {
			return res, fmt.Errorf("seed products: %w", err)
		}
		o.Progress("products", len(products), o.Products)
		res.Products = len(products)
	}

	// Registering hashes a password (bcrypt, CPU-bound on purpose): more workers than
	// cores only queue up and time out.
	users := make([]int64, o.Users)
	err = parallel(ctx, min(o.Workers, runtime.GOMAXPROCS(0)), o.Users, func(ctx context.Context, i int) error {
		id, err := ensureUser(ctx, c.Users, UserName(i))
		users[i] = id
		return err
	}, func(done int) { o.Progress("users", done, o.Users) })
	if err != nil {
		return res, fmt.Errorf("seed users: %w", err)
	}
	res.Users, res.DemoUserID, res.UserIDs = len(users), users[0], users

	// Popularity is Zipf over user rank (rank 1 = users[1]; the demo user follows rather
	// than creates): each user follows a handful of creators drawn by popularity, which
	// gives the long tail of follower counts real networks have.
	pop := newZipf(len(users)-1, 1.1)
	type edge struct{ from, to int64 }
	var edges []edge
	seen := map[edge]bool{}
	for i, u := range users {
		n := 3 + r.IntN(12)
		if i == 0 {
			n = 25
		}
		for range n {
			to := users[1+pop.draw(r)]
			e := edge{u, to}
			if to != u && !seen[e] {
				seen[e] = true
				edges = append(edges, e)
			}
		}
	}
	err = parallel(ctx, o.Workers, len(edges), func(ctx context.Context, i int) error {
		_, err := c.Users.Follow(ctx, &userv1.FollowRequest{FollowerId: edges[i].from, FolloweeId: edges[i].to})
		return err
	}, func(done int) { o.Progress("follows", done, len(edges)) })
	if err != nil {
		return res, fmt.Errorf("seed follows: %w", err)
	}
	res.Follows = len(edges)

	// Popular users post more. Notes are drawn up front so the data set does not depend on
	// the order calls finish in.
	notes := make([]*notev1.CreateNoteRequest, o.Notes)
	for i := range notes {
		notes[i] = note(r, users[1+pop.draw(r)], i, products)
	}
	noteIDs := make([]int64, len(notes))
	err = parallel(ctx, o.Workers, len(notes), func(ctx context.Context, i int) error {
		n, err := c.Notes.CreateNote(ctx, notes[i])
		if err == nil {
			noteIDs[i] = n.GetId()
		}
		return err
	}, func(done int) { o.Progress("notes", done, len(notes)) })
	if err != nil {
		return res, fmt.Errorf("seed notes: %w", err)
	}
	res.Notes = len(notes)

	if c.Interactions != nil {
		notePop := newZipf(len(noteIDs), 1.0)
		likes := make([]*interactionv1.ReactRequest, o.Likes)
		for i := range likes {
			likes[i] = &interactionv1.ReactRequest{UserId: users[r.IntN(len(users))], TargetId: noteIDs[notePop.draw(r)]}
		}
		err = parallel(ctx, o.Workers, len(likes), func(ctx context.Context, i int) error {
			_, err := c.Interactions.Like(ctx, likes[i])
			return err
		}, func(done int) { o.Progress("likes", done, len(likes)) })
		if err != nil {
			return res, fmt.Errorf("seed likes: %w", err)
		}
		res.Likes = len(likes)
	}
	return res, nil
}

// UserName is the username of the i-th seeded user (0 is DemoUser); all have DemoPassword.
func UserName(i int) string {
	if i == 0 {
		return DemoUser
	}
	return fmt.Sprintf("%s_%03d", handles[i%len(handles)], i)
}

// ensureUser registers a user, or logs in when it exists, and returns its id.
func ensureUser(ctx context.Context, users userv1.UserClient, name string) (int64, error) {
	display := name
	u, err := users.Register(ctx, &userv1.RegisterRequest{Username: name, Password: DemoPassword, DisplayName: display})
	if err == nil {
		return u.GetId(), nil
	}
	if errs.Reason(err) != "USERNAME_TAKEN" {
		return 0, err
	}
	l, err := users.Login(ctx, &userv1.LoginRequest{Username: name, Password: DemoPassword})
	if err != nil {
		return 0, fmt.Errorf("%s exists with another password: seed into an empty data_dir: %w", name, err)
	}
	return l.GetUser().GetId(), nil
}

func note(r *rand.Rand, author int64, i int, products []int64) *notev1.CreateNoteRequest {
	topic := topics[r.IntN(len(topics))]
	tags := []string{topic.tag}
	if extra := topics[r.IntN(len(topics))].tag; extra != topic.tag && r.IntN(3) == 0 {
		tags = append(tags, extra)
	}
	req := &notev1.CreateNoteRequest{
		AuthorId:       author,
		Title:          topic.titles[r.IntN(len(topic.titles))],
		Body:           topic.bodies[r.IntN(len(topic.bodies))],
		Tags:           tags,
		Media:          []string{fmt.Sprintf("https://media.redline.example/%s/%d.jpg", topic.tag, i)},
		IdempotencyKey: fmt.Sprintf("seed-note-%d", i),
	}
	if len(products) > 0 && r.IntN(4) == 0 {
		req.ProductIds = []int64{products[r.IntN(len(products))]}
	}
	return req
}

// parallel runs f for 0..n-1 on workers goroutines, reporting progress every 5%, and
// returns the first error (the rest of the work is skipped).
func parallel(ctx context.Context, workers, n int, f func(context.Context, int) error, progress func(int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	step := max(n/20, 1)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := withBackoff(ctx, func() error { return f(ctx, i) }); err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				done++
				if done%step == 0 || done == n {
					progress(done)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// withBackoff calls f until it succeeds, fails for good, or has tried 20 times. A seed is a
// batch job and the services shed load to protect interactive traffic: an overloaded,
// unavailable or timed-out answer means "later", so it waits 50ms, doubling to 2s, with
// jitter. Every call the seed makes is safe to repeat (idempotency keys, set-not-add,
// register-or-login).
func withBackoff(ctx context.Context, f func() error) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		c := errs.Code(err)
		if err == nil || attempt == 20 || (c != codes.ResourceExhausted && c != codes.Unavailable && c != codes.DeadlineExceeded) {
			return err
		}
		if err := clock.Sleep(ctx, wait/2+rand.N(wait/2)); err != nil {
			return err
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// zipf draws ranks 0..n-1 with probability ∝ 1/(rank+1)^s, by inverting the CDF.
type zipf struct{ cdf []float64 }

func newZipf(n int, s float64) *zipf {
	z := &zipf{cdf: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), s)
		z.cdf[i] = sum
	}
	for i := range z.cdf {
		z.cdf[i] /= sum
	}
	return z
}

func (z *zipf) draw(r *rand.Rand) int {
	u := r.Float64()
	lo, hi := 0, len(z.cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if z.cdf[mid] < u {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
