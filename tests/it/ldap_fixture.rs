//! The LDIF fixtures of the LDAP tests.
