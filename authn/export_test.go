package authn

// HashWithSalt exposes the salted hash to the tests, to compare with passlib.
var HashWithSalt = hashWithSalt
