// Package bench holds the benchmarks of the kit's default server chain against a bare
// handler and against kratos' equivalent middleware chain, over HTTP and gRPC. It has its own
// module so that kratos stays out of the main module's dependencies. Results are in README.md.
package bench
