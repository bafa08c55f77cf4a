// Package access decides who is calling and what they may read.
//
// An access file (YAML, see ParseFile) lists principals. Each principal has
// credentials — hashed bearer tokens for Connect, gRPC and gRPC-Web, access
// key pairs for the EC2-compatible endpoint (SigV4), and client-certificate
// identities for mTLS — and a Scope: the accounts and regions whose endpoints
// it may read. An Authenticator holds the current file, turns a request's
// credentials into a *Principal and reloads the file on change or on demand
// without dropping requests.
//
// Without an access file the service is open: every caller is Anonymous(),
// whose scope allows everything. That is the demo's setup and is documented
// as such; production sets an access file.
//
// Nothing in this package logs or returns a credential: not a token, a
// secret, a signature, nor more than 64 characters of anything a caller sent.
package access
