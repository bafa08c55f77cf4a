module github.com/vpnfacade/vpnfacade

go 1.26.0

require (
	connectrpc.com/connect v1.21.1
	github.com/aws/aws-sdk-go-v2/service/ec2 v1.346.0
	google.golang.org/protobuf v1.36.12
)

require github.com/aws/smithy-go v1.28.9 // indirect

tool (
	connectrpc.com/connect/cmd/protoc-gen-connect-go
	google.golang.org/protobuf/cmd/protoc-gen-go
)
