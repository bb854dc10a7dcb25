//! Allocator settings for the `idpsync` binary, which runs on mimalloc: a run at a million
//! memberships makes millions of small allocations, and mimalloc made those runs about 20 % faster.

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t` of mimalloc 3, as pinned by
/// Cargo.lock; a test checks it still reads that option's default, 1000 ms in `src/options.c`).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed memory before returning it to the system. Its default (1 s)
/// kept a first full run at a million memberships near 260 MB peak; 100 ms kept it near 235 MB
/// at the same speed (`scripts/bench`).
const PURGE_DELAY_MS: std::os::raw::c_long = 100;

/// Applies the settings; call first thing in `main`.
pub fn tune() {
    // SAFETY: mi_option_set only stores an integer option; it is valid at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_mimalloc_documents() {
        // SAFETY: reading an option has no preconditions.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(
            default, 1000,
            "mi_option_purge_delay moved: check mimalloc.h and options.c of the pinned libmimalloc-sys"
        );
    }
}
