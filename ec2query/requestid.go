package ec2query

import "github.com/google/uuid"

// NewRequestID returns a fresh request id for an EC2 response's <requestId>
// (and its x-amzn-RequestId header): a random (version 4) UUID in its
// lower-case 8-4-4-4-12 form, the layout EC2's own request ids have.
func NewRequestID() string {
	return uuid.NewString()
}
