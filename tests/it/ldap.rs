//! The LDAP IdP against a real slapd.
