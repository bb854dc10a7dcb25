//! The service (idpsync run) in-process and as a child process.
