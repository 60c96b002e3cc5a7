// Package proto holds the wire protocol between the Rulebook engine and its
// action plugins: the gRPC service in plugin.proto, the generated Go code
// (checked in, so building a plugin needs only `go build`), and the
// go-plugin handshake both sides must agree on.
//
// To regenerate after editing plugin.proto, install protoc (Debian package
// protobuf-compiler) and the two generators, then run go generate:
//
//	apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
//	go generate ./plugins/proto
//
// A change that old plugins cannot understand must bump ProtocolVersion.
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative source.proto
