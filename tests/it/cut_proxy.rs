//! A loopback TCP proxy that cuts an LDAP connection after N messages.
