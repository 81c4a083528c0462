module github.com/redline-dev/redline/bench

go 1.26.8

require github.com/redline-dev/redline v0.0.0

require (
	github.com/go-kratos/kratos/v2 v2.8.3 // indirect
	github.com/go-playground/form/v4 v4.2.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace github.com/redline-dev/redline => ../
