package vpnfacade

// PartitionKey names one partition of the cache: an AWS account in a
// region, the unit the refresher reads and EC2 answers for.
type PartitionKey struct {
	// AccountID is the AWS account, 12 digits.
	AccountID string
	// Region is the AWS region, e.g. "eu-west-1".
	Region string
}

// String returns "account/region".
func (k PartitionKey) String() string { return k.AccountID + "/" + k.Region }
