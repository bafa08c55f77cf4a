package ec2sim_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/vpnfacade/vpnfacade/ec2sim"
)

func newSTSClient(url string) *sts.Client {
	return sts.New(sts.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      connectionRetries(),
	})
}

func TestAssumeRoleReadsTheRolesAccount(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 40, Seed: 11, Regions: []string{"eu-west-1"}, Accounts: []string{accountA, accountB}},
		ec2sim.Options{DefaultRegion: "eu-west-1"})
	provider := stscreds.NewAssumeRoleProvider(newSTSClient(url), "arn:aws:iam::"+accountB+":role/vpnfacade-reader",
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "vpnfacade"; o.Duration = 20 * time.Minute })
	creds := aws.NewCredentialsCache(provider)

	got, err := creds.Retrieve(t.Context())
	if err != nil {
		t.Fatalf("AssumeRole through stscreds: %v", err)
	}
	if !strings.HasPrefix(got.AccessKeyID, "ASIA"+accountB) || got.SecretAccessKey == "" || got.SessionToken == "" {
		t.Errorf("credentials %+v do not look like an assumed role's of %s", got, accountB)
	}
	if !got.CanExpire || got.Expires.Before(time.Now().Add(15*time.Minute)) || got.Expires.After(time.Now().Add(25*time.Minute)) {
		t.Errorf("expiry %v, want about 20 minutes from now", got.Expires)
	}

	// EC2 calls signed with the assumed role's key read the role's account.
	roleClient := newClient(url, "eu-west-1", func(o *ec2.Options) { o.Credentials = creds })
	eps, _, err := listAll(t, roleClient, &ec2.DescribeClientVpnEndpointsInput{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := protoIDs(sim.Endpoints(accountB, "eu-west-1")); len(want) == 0 || !slices.Equal(ids(eps), want) {
		t.Errorf("assumed role read %v, want account %s's %v", ids(eps), accountB, want)
	}
	// Ordinary keys read the default account.
	eps, _, err = listAll(t, newClient(url, "eu-west-1"), &ec2.DescribeClientVpnEndpointsInput{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := protoIDs(sim.Endpoints(accountA, "eu-west-1")); !slices.Equal(ids(eps), want) {
		t.Errorf("static key read %v, want account %s's %v", ids(eps), accountA, want)
	}

	// GetCallerIdentity names the assumed role.
	stsWithRole := sts.New(sts.Options{Region: "eu-west-1", BaseEndpoint: aws.String(url), Credentials: creds, Retryer: connectionRetries()})
	id, err := stsWithRole.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Account) != accountB || aws.ToString(id.Arn) != "arn:aws:sts::"+accountB+":assumed-role/vpnfacade-reader/vpnfacade" {
		t.Errorf("caller identity %s %s", aws.ToString(id.Account), aws.ToString(id.Arn))
	}
	if st := sim.Stats(); st.ByAction["AssumeRole"] != 1 || st.ByAction["GetCallerIdentity"] != 1 {
		t.Errorf("STS calls counted %v", st.ByAction)
	}
}

func TestAssumeRoleValidation(t *testing.T) {
	_, url := startSim(t, ec2sim.GenerateOptions{}, ec2sim.Options{})
	c := newSTSClient(url)
	for _, tt := range []struct {
		in   sts.AssumeRoleInput
		want string
	}{
		{sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::12345:role/x"), RoleSessionName: aws.String("s")}, "not a valid role ARN"},
		{sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/x"), RoleSessionName: aws.String("s"), DurationSeconds: aws.Int32(60)}, "durationSeconds"},
	} {
		_, err := c.AssumeRole(t.Context(), &tt.in)
		if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("AssumeRole(%s): %v, want ValidationError mentioning %q", aws.ToString(tt.in.RoleArn), err, tt.want)
		}
	}
}
