package stack

import (
	"context"

	"fmt"
	"strconv"
	"time"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	historyv1 "github.com/redline-dev/redline/api/history/v1"
	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	orderv1 "github.com/redline-dev/redline/api/order/v1"
	paymentv1 "github.com/redline-dev/redline/api/payment/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	searchv1 "github.com/redline-dev/redline/api/search/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/ha/quota"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/data/bloom"
	"github.com/redline-dev/redline/kit/data/hotkey"
	"github.com/redline-dev/redline/kit/middleware"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/bff"
	"github.com/redline-dev/redline/services/comment"
	"github.com/redline-dev/redline/services/feed"
	"github.com/redline-dev/redline/services/history"
	"github.com/redline-dev/redline/services/interaction"
	"github.com/redline-dev/redline/services/inventory"
	"github.com/redline-dev/redline/services/note"
	"github.com/redline-dev/redline/services/order"
	"github.com/redline-dev/redline/services/payment"
	"github.com/redline-dev/redline/services/payment/provider"
	"github.com/redline-dev/redline/services/product"
	"github.com/redline-dev/redline/services/search"
	"github.com/redline-dev/redline/services/user"
	"github.com/redline-dev/redline/stress/lane"
)

// ProviderName is the mock payment provider's name: a third party, so it is served as plain
// HTTP with no kit middleware, the way a real provider's API would look to us.
const ProviderName = "payprovider"

// builders build each service into the stack: its database, its background loops, its
// server. Each appends its components in start order, so they stop in reverse: the server
// first, then the loops that serve it, then the database.
var builders = map[string]func(*Stack, context.Context) error{
	QuotaName:        (*Stack).serveQuota,
	user.Name:        (*Stack).buildUser,
	note.Name:        (*Stack).buildNote,
	interaction.Name: (*Stack).buildInteraction,
	inventory.Name:   (*Stack).buildInventory,
	product.Name:     (*Stack).buildProduct,
	order.Name:       (*Stack).buildOrder,
	ProviderName:     (*Stack).buildProvider,
	payment.Name:     (*Stack).buildPayment,
	feed.Name:        (*Stack).buildFeed,
	comment.Name:     (*Stack).buildComment,
	history.Name:     (*Stack).buildHistory,
	search.Name:      (*Stack).buildSearch,
	SREName:          (*Stack).buildSRE,
	bff.Name:         (*Stack).buildBFF,
}

func (s *Stack) buildUser(ctx context.Context) error {
	db, err := s.openDB(ctx, user.Name, s.cfg.dsn(user.Name, s.cfg.User.DB))
	if err != nil {
		return err
	}
	c, err := s.openCache(ctx, user.Name)
	if err != nil {
		return err
	}
	svc, err := user.New(ctx, db, c, s.signer, s.cfg.userConfig())
	if err != nil {
		return err
	}
	srv, err := s.serveGRPC(user.Name, s.cfg.User.Addr, s.slow)
	if err != nil {
		return err
	}
	userv1.RegisterUserServer(srv, svc)
	return nil
}

func (s *Stack) buildNote(ctx context.Context) error {
	cfg := s.cfg.Note
	db, err := s.openDB(ctx, note.Name, s.cfg.dsn(note.Name, cfg.DB))
	if err != nil {
		return err
	}
	q, err := s.openQueue(ctx, note.Name, 1)
	if err != nil {
		return err
	}
	c, err := s.openCache(ctx, note.Name)
	if err != nil {
		return err
	}
	whitelist := make([]string, len(cfg.HotWhitelist))
	for i, id := range cfg.HotWhitelist {
		whitelist[i] = "note:" + strconv.FormatInt(id, 10)
	}
	hot := hotkey.NewLocal(hotkey.WithTTL(cfg.HotTTL), hotkey.WithWhitelist(whitelist...))
	// One filter per process is right for `up`; note instances sharing a Redis cache share
	// one filter there, so each sees the ids the others create.
	var ids bloom.IDs
	if rdb := s.redisClient(); rdb != nil {
		ids, err = bloom.NewRedis(rdb, s.cachePrefix()+"note-ids", cfg.ExpectedNotes, 0.01)
	} else {
		ids, err = bloom.New(cfg.ExpectedNotes, 0.01)
	}
	if err != nil {
		return fmt.Errorf("note: id filter: %w", err)
	}
	svc, err := note.New(ctx, db, note.WithQueue(q), note.WithLogger(s.logger), note.WithCache(c), note.WithHotKeys(hot),
		note.WithIDFilter(ids))
	if err != nil {
		return err
	}
	if !s.shadow {
		s.Admin.AddState("note_reads", func() any { return svc.ReadStats() })
	}
	// The relay publishes what the service wrote: it stops after the server, before the queue.
	s.components = append(s.components, app.Hook("note outbox relay", nil, func(context.Context) error { return svc.Close() }))
	// With note.replicas above 1, every replica's server serves this one svc: the replicas
	// share the database, cache, hot-key copies and relay, and differ in their servers.
	srv, err := s.serveGRPC(note.Name, cfg.Addr, nil)
	if err != nil {
		return err
	}
	notev1.RegisterNoteServer(srv, svc)
	return nil
}

func (s *Stack) buildInteraction(ctx context.Context) error {
	db, err := s.openDB(ctx, interaction.Name, s.cfg.dsn(interaction.Name, s.cfg.Interaction.DB))
	if err != nil {
		return err
	}
	svc, batcher, err := interaction.New(ctx, db, interaction.WithLogger(s.logger))
	if err != nil {
		return err
	}
	// The last buffered counts are flushed once no call can add more.
	s.components = append(s.components, app.Hook("interaction counters", nil, func(context.Context) error { return batcher.Close() }))
	srv, err := s.serveGRPC(interaction.Name, s.cfg.Interaction.Addr, nil)
	if err != nil {
		return err
	}
	interactionv1.RegisterInteractionServer(srv, svc)
	return nil
}

func (s *Stack) buildInventory(ctx context.Context) error {
	db, err := s.openDB(ctx, inventory.Name, s.cfg.dsn(inventory.Name, s.cfg.Inventory.DB))
	if err != nil {
		return err
	}
	svc, err := inventory.New(ctx, db)
	if err != nil {
		return err
	}
	srv, err := s.serveGRPC(inventory.Name, s.cfg.Inventory.Addr, nil)
	if err != nil {
		return err
	}
	inventoryv1.RegisterInventoryServer(srv, svc)
	return nil
}

func (s *Stack) buildProduct(ctx context.Context) error {
	db, err := s.openDB(ctx, product.Name, s.cfg.dsn(product.Name, s.cfg.Product.DB))
	if err != nil {
		return err
	}
	q, err := s.openQueue(ctx, product.Name, 1)
	if err != nil {
		return err
	}
	svc, err := product.New(ctx, db, q, product.WithLogger(s.logger))
	if err != nil {
		return err
	}
	s.components = append(s.components, app.Hook("product outbox relay", nil, func(context.Context) error { return svc.Close() }))
	srv, err := s.serveGRPC(product.Name, s.cfg.Product.Addr, nil)
	if err != nil {
		return err
	}
	svc.Register(srv)
	return nil
}

func (s *Stack) buildOrder(ctx context.Context) error {
	cfg := s.cfg.Order
	db, err := s.openDB(ctx, order.Name, s.cfg.dsn(order.Name, cfg.DB))
	if err != nil {
		return err
	}
	products, err := s.client(product.Name)
	if err != nil {
		return err
	}
	stock, err := s.client(inventory.Name)
	if err != nil {
		return err
	}
	svc, closer, err := order.New(ctx, db, productv1.NewProductClient(products), inventoryv1.NewInventoryClient(stock),
		order.PaymentTimeout(cfg.PaymentTimeout), order.CloseInterval(cfg.CloseInterval), order.CreateTimeout(cfg.CreateTimeout),
		order.WithLogger(s.logger))
	if err != nil {
		return err
	}
	s.components = append(s.components, app.Hook("order closer", nil, func(context.Context) error { return closer.Close() }))
	srv, err := s.serveGRPC(order.Name, cfg.Addr, nil)
	if err != nil {
		return err
	}
	orderv1.RegisterOrderServer(srv, svc)
	return nil
}

// buildProvider serves the mock payment provider on plain HTTP.
func (s *Stack) buildProvider(context.Context) error {
	cfg := s.cfg.Provider
	mock := provider.NewServer([]byte(s.cfg.Payment.Secret), provider.Delay(cfg.Delay), provider.FailureRatio(cfg.FailureRatio),
		provider.WithLogger(s.logger))
	srv := kithttp.NewServer(ProviderName, kithttp.Address(cfg.Addr), kithttp.Logger(s.logger))
	srv.Handle("/", mock)
	s.provider = srv
	s.components = append(s.components, app.Hook("payprovider callbacks", nil, func(context.Context) error { return mock.Close() }), srv)
	return nil
}

func (s *Stack) buildPayment(ctx context.Context) error {
	cfg := s.cfg.Payment
	db, err := s.openDB(ctx, payment.Name, s.cfg.dsn(payment.Name, cfg.DB))
	if err != nil {
		return err
	}
	orders, err := s.client(order.Name)
	if err != nil {
		return err
	}
	providerURL := func() string {
		if cfg.ProviderURL != "" || s.provider == nil {
			return cfg.ProviderURL
		}
		return "http://" + s.provider.Endpoint()
	}
	callback := func() string {
		if cfg.CallbackURL != "" || s.bff == nil {
			return cfg.CallbackURL
		}
		return s.BFFURL() + "/v1/payments/callback"
	}
	if s.shadow {
		if providerURL, err = s.shadowProviderURL(); err != nil {
			return err
		}
		callback = s.shadowCallbackURL(callback)
	}
	svc, retrier, err := payment.New(ctx, db, orderv1.NewOrderClient(orders),
		s.newProviderCharger(providerURL),
		payment.Config{Secret: []byte(cfg.Secret), CallbackURL: callback}, payment.WithLogger(s.logger))
	if err != nil {
		return err
	}
	s.components = append(s.components, app.Hook("payment retrier", nil, func(context.Context) error { return retrier.Close() }))
	srv, err := s.serveGRPC(payment.Name, cfg.Addr, nil)
	if err != nil {
		return err
	}
	paymentv1.RegisterPaymentServer(srv, svc)
	return nil
}

func (s *Stack) buildFeed(ctx context.Context) error {
	cfg := s.cfg.Feed
	db, err := s.openDB(ctx, feed.Name, s.cfg.dsn(feed.Name, cfg.DB))
	if err != nil {
		return err
	}
	// Fan-out batches form from the events handled at the same moment: its subscription
	// runs handlers in parallel.
	q, err := s.openQueue(ctx, feed.Name, 16)
	if err != nil {
		return err
	}
	users, err := s.client(user.Name)
	if err != nil {
		return err
	}
	counts, err := s.dial(interaction.Name, false)
	if err != nil {
		return err
	}
	svc, loops, err := feed.New(ctx, db, q, userv1.NewUserClient(users), feed.WithCounters(interactionv1.NewInteractionClient(counts)),
		feed.BigAuthorThreshold(cfg.BigAuthorFollowers), feed.InboxCap(cfg.InboxCap), feed.WithLogger(s.logger))
	if err != nil {
		return err
	}
	s.components = append(s.components, app.Hook("feed fan-out", nil, func(context.Context) error { return loops.Close() }))
	srv, err := s.serveGRPC(feed.Name, cfg.Addr, nil)
	if err != nil {
		return err
	}
	feedv1.RegisterFeedServer(srv, svc)
	return nil
}

func (s *Stack) buildComment(ctx context.Context) error {
	db, err := s.openDB(ctx, comment.Name, s.cfg.dsn(comment.Name, s.cfg.Comment.DB))
	if err != nil {
		return err
	}
	q, err := s.openQueue(ctx, comment.Name, 1)
	if err != nil {
		return err
	}
	notes, err := s.client(note.Name)
	if err != nil {
		return err
	}
	counts, err := s.dial(interaction.Name, false)
	if err != nil {
		return err
	}
	svc, worker, err := comment.New(ctx, db, notev1.NewNoteClient(notes), interactionv1.NewInteractionClient(counts), q,
		comment.WithLogger(s.logger))
	if err != nil {
		return err
	}
	s.components = append(s.components, app.Hook("comment writer", nil, func(context.Context) error { return worker.Close() }))
	srv, err := s.serveGRPC(comment.Name, s.cfg.Comment.Addr, nil)
	if err != nil {
		return err
	}
	commentv1.RegisterCommentServer(srv, svc)
	return nil
}

func (s *Stack) buildHistory(ctx context.Context) error {
	db, err := s.openDB(ctx, history.Name, s.cfg.dsn(history.Name, s.cfg.History.DB))
	if err != nil {
		return err
	}
	svc, writer, err := history.New(ctx, db, history.WithLogger(s.logger))
	if err != nil {
		return err
	}
	s.components = append(s.components, app.Hook("history writer", nil, func(context.Context) error { return writer.Close() }))
	srv, err := s.serveGRPC(history.Name, s.cfg.History.Addr, nil)
	if err != nil {
		return err
	}
	historyv1.RegisterHistoryServer(srv, svc)
	return nil
}

func (s *Stack) buildSearch(ctx context.Context) error {
	db, err := s.openDB(ctx, search.Name, s.cfg.dsn(search.Name, s.cfg.Search.DB))
	if err != nil {
		return err
	}
	q, err := s.openQueue(ctx, search.Name, 1)
	if err != nil {
		return err
	}
	svc, indexer, err := search.New(ctx, db, q, search.WithLogger(s.logger))
	if err != nil {
		return err
	}
	s.components = append(s.components, app.Hook("search indexer", nil, func(context.Context) error { return indexer.Close() }))
	srv, err := s.serveGRPC(search.Name, s.cfg.Search.Addr, nil)
	if err != nil {
		return err
	}
	searchv1.RegisterSearchServer(srv, svc)
	return nil
}

func (s *Stack) buildBFF(context.Context) error {
	cfg := s.cfg
	// The BFF cannot answer its core routes without users, notes and the feed: their
	// absence fails readiness. The rest degrade route by route.
	var c bff.Clients
	for _, d := range []struct {
		name     string
		required bool
		set      func(*kitgrpc.Client)
	}{
		{user.Name, true, func(cc *kitgrpc.Client) { c.Users = userv1.NewUserClient(cc) }},
		{note.Name, true, func(cc *kitgrpc.Client) { c.Notes = notev1.NewNoteClient(cc) }},
		{feed.Name, true, func(cc *kitgrpc.Client) { c.Feed = feedv1.NewFeedClient(cc) }},
		{interaction.Name, false, func(cc *kitgrpc.Client) { c.Interactions = interactionv1.NewInteractionClient(cc) }},
		{comment.Name, false, func(cc *kitgrpc.Client) { c.Comments = commentv1.NewCommentClient(cc) }},
		{history.Name, false, func(cc *kitgrpc.Client) { c.History = historyv1.NewHistoryClient(cc) }},
		{search.Name, false, func(cc *kitgrpc.Client) { c.Search = searchv1.NewSearchClient(cc) }},
		{product.Name, false, func(cc *kitgrpc.Client) {
			c.Products, c.Carts = productv1.NewProductClient(cc), productv1.NewCartClient(cc)
		}},
		{inventory.Name, false, func(cc *kitgrpc.Client) { c.Inventory = inventoryv1.NewInventoryClient(cc) }},
		{order.Name, false, func(cc *kitgrpc.Client) { c.Orders = orderv1.NewOrderClient(cc) }},
		{payment.Name, false, func(cc *kitgrpc.Client) { c.Payments = paymentv1.NewPaymentClient(cc) }},
	} {
		cc, err := s.dial(d.name, d.required)
		if err != nil {
			return err
		}
		d.set(cc)
	}
	quotas, err := s.dial(QuotaName, false)
	if err != nil {
		return err
	}
	// Before its first lease a BFF admits up to 10/s per resource, so a BFF started
	// without a quota service still serves a trickle rather than nothing. It asks
	// for at least 10/s and keeps a second of it as burst, so a quiet BFF can still
	// take a user's burst of writes; under contention max-min fairness decides.
	qc, err := quota.NewClient(quotav1.NewQuotaClient(quotas), quota.Logger(s.logger),
		quota.DefaultPolicy(quota.Policy{InitialRate: 10}), quota.MinDemand(10), quota.Burst(time.Second))
	if err != nil {
		return fmt.Errorf("bff: quota client: %w", err)
	}
	s.quotaClient = qc
	// Stopped after the BFF's server (components stop in reverse), releasing its leases.
	s.components = append(s.components, app.Hook("quota client", nil, func(context.Context) error { return qc.Close() }))
	h, err := s.haServer(bff.Name, true)
	if err != nil {
		return err
	}
	opts := []kithttp.ServerOption{kithttp.Address(cfg.BFF.Addr), kithttp.Logger(s.logger), kithttp.Edge(), kithttp.HA(h),
		kithttp.MaxBody(cfg.BFF.MaxBody),
		kithttp.Deadline(middleware.DeadlineConfig{Default: cfg.Timeouts.Edge, Margin: cfg.Timeouts.Margin,
			Operations: cfg.Timeouts.budgets(nil)})}
	if cfg.Stress.Key != "" {
		signer, err := lane.NewSigner(cfg.Stress.Key, nil)
		if err != nil {
			return fmt.Errorf("stress.key: %w", err)
		}
		opts = append(opts, kithttp.EdgeLanes(signer.Verify, lane.Reason))
	}
	s.bff = kithttp.NewServer(bff.Name, opts...)
	after := []middleware.Middleware{s.laneGuard(bff.Name), quota.Server(qc, cfg.Quota.Routes)}
	if !cfg.Stress.Shadow {
		after = append([]middleware.Middleware{failClosedLanes()}, after...)
	}
	bff.Register(s.bff, c, s.signer, after...)
	s.components = append(s.components, s.bff)
	return nil
}
