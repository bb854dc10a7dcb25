//! The LDAP IdP in Active Directory mode against the fake AD.
