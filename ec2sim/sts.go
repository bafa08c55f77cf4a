package ec2sim

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// STS actions the server answers besides EC2's.
const (
	ActionAssumeRole        = "AssumeRole"
	ActionGetCallerIdentity = "GetCallerIdentity"
)

// stsNamespace is the XML namespace of STS 2011-06-15 responses.
const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// Session duration bounds of AssumeRole, in seconds.
const (
	minSessionSeconds     = 900
	maxSessionSeconds     = 43200
	defaultSessionSeconds = 3600
)

// maxIssuedKeys bounds how many issued access keys the server remembers for
// GetCallerIdentity; beyond it the oldest are forgotten (their account is
// still read from the key itself).
const maxIssuedKeys = 10000

// The access keys AssumeRole issues are "ASIA", the role's 12-digit account
// id and 4 random characters: 20 characters like a real key, from which the
// account of later EC2 calls signed with it is read back.
const (
	issuedKeyPrefix = "ASIA"
	issuedKeyLen    = 20
)

// accountOfAccessKey returns the account an access key issued by AssumeRole
// belongs to, and false for any other key.
func accountOfAccessKey(key string) (string, bool) {
	if len(key) != issuedKeyLen || !strings.HasPrefix(key, issuedKeyPrefix) {
		return "", false
	}
	account := key[len(issuedKeyPrefix) : len(issuedKeyPrefix)+12]
	if !validAccount(account) {
		return "", false
	}
	return account, true
}

// roleARN is a parsed IAM role ARN.
type roleARN struct {
	partition, account, name string
}

// parseRoleARN parses arn:<partition>:iam::<account>:role/<path/><name>.
func parseRoleARN(s string) (roleARN, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "iam" || parts[3] != "" ||
		!validAccount(parts[4]) || !strings.HasPrefix(parts[5], "role/") {
		return roleARN{}, false
	}
	path := parts[5][len("role/"):]
	name := path[strings.LastIndexByte(path, '/')+1:]
	if name == "" {
		return roleARN{}, false
	}
	return roleARN{partition: parts[1], account: parts[4], name: name}, true
}

// stsError is an STS error: the Query protocol's ErrorResponse document.
type stsError struct {
	status  int
	kind    string // Sender or Receiver
	code    string
	message string
}

// Error implements error.
func (e *stsError) Error() string { return e.code + ": " + e.message }

func stsValidationError(format string, args ...any) *stsError {
	return &stsError{status: http.StatusBadRequest, kind: "Sender", code: "ValidationError", message: fmt.Sprintf(format, args...)}
}

type stsErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

type stsResponseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type stsAssumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type assumeRoleResponse struct {
	XMLName          xml.Name            `xml:"AssumeRoleResponse"`
	Xmlns            string              `xml:"xmlns,attr"`
	AssumedRoleUser  stsAssumedRoleUser  `xml:"AssumeRoleResult>AssumedRoleUser"`
	Credentials      stsCredentials      `xml:"AssumeRoleResult>Credentials"`
	PackedPolicySize int                 `xml:"AssumeRoleResult>PackedPolicySize"`
	Metadata         stsResponseMetadata `xml:"ResponseMetadata"`
}

type getCallerIdentityResponse struct {
	XMLName  xml.Name            `xml:"GetCallerIdentityResponse"`
	Xmlns    string              `xml:"xmlns,attr"`
	Arn      string              `xml:"GetCallerIdentityResult>Arn"`
	UserID   string              `xml:"GetCallerIdentityResult>UserId"`
	Account  string              `xml:"GetCallerIdentityResult>Account"`
	Metadata stsResponseMetadata `xml:"ResponseMetadata"`
}

// issuedKey is what the server remembers of credentials it issued.
type issuedKey struct {
	arn, roleID string
}

// assumeRole answers STS AssumeRole: credentials whose access key names the
// role's account, so EC2 calls signed with them read that account's data.
func (s *Server) assumeRole(w http.ResponseWriter, form url.Values, requestID string) {
	roleArn := form.Get("RoleArn")
	session := form.Get("RoleSessionName")
	switch {
	case roleArn == "":
		s.writeSTSError(w, requestID, stsValidationError("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"))
		return
	case session == "":
		s.writeSTSError(w, requestID, stsValidationError("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"))
		return
	}
	role, ok := parseRoleARN(roleArn)
	if !ok {
		s.writeSTSError(w, requestID, stsValidationError(
			"%s is not a valid role ARN: expected arn:aws:iam::<12-digit account>:role/<name>", roleArn))
		return
	}
	seconds := defaultSessionSeconds
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < minSessionSeconds || n > maxSessionSeconds {
			s.writeSTSError(w, requestID, stsValidationError(
				"1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must be between %d and %d",
				d, minSessionSeconds, maxSessionSeconds))
			return
		}
		seconds = n
	}

	s.mu.Lock()
	key := issuedKeyPrefix + role.account + s.randomString(4, upperAlnum)
	secret := s.randomString(40, secretAlphabet)
	token := "FwoGZXIvYXdzE" + s.randomString(120, secretAlphabet)
	roleID := "AROA" + s.randomString(17, upperAlnum)
	arn := fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", role.partition, role.account, role.name, session)
	if len(s.issued) >= maxIssuedKeys {
		clear(s.issued)
	}
	s.issued[key] = issuedKey{arn: arn, roleID: roleID + ":" + session}
	now := s.now()
	s.mu.Unlock()

	writeSTS(w, http.StatusOK, assumeRoleResponse{
		Xmlns:           stsNamespace,
		AssumedRoleUser: stsAssumedRoleUser{AssumedRoleID: roleID + ":" + session, Arn: arn},
		Credentials: stsCredentials{
			AccessKeyID:     key,
			SecretAccessKey: secret,
			SessionToken:    token,
			Expiration:      now.Add(time.Duration(seconds) * time.Second).UTC().Format(time.RFC3339),
		},
		Metadata: stsResponseMetadata{RequestID: requestID},
	})
}

// getCallerIdentity answers STS GetCallerIdentity for the access key that
// signed the request.
func (s *Server) getCallerIdentity(w http.ResponseWriter, accessKey, account, requestID string) {
	s.mu.Lock()
	issued, ok := s.issued[accessKey]
	s.mu.Unlock()
	resp := getCallerIdentityResponse{
		Xmlns:    stsNamespace,
		Account:  account,
		Arn:      fmt.Sprintf("arn:aws:iam::%s:user/ec2sim", account),
		UserID:   accessKey,
		Metadata: stsResponseMetadata{RequestID: requestID},
	}
	if ok {
		resp.Arn, resp.UserID = issued.arn, issued.roleID
	}
	if resp.UserID == "" {
		resp.UserID = "AIDAEC2SIMANONYMOUS"
	}
	writeSTS(w, http.StatusOK, resp)
}

func (s *Server) writeSTSError(w http.ResponseWriter, requestID string, e *stsError) {
	writeSTS(w, e.status, stsErrorResponse{
		Xmlns: stsNamespace, Type: e.kind, Code: e.code, Message: e.message, RequestID: requestID,
	})
}

// writeSTS writes an STS XML document with its status.
func writeSTS(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		// The documents are fixed structs of strings: this cannot happen.
		http.Error(w, "encode STS response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}

const (
	upperAlnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// randomString returns n characters of alphabet from the server's random
// stream. The caller holds s.mu.
func (s *Server) randomString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}
