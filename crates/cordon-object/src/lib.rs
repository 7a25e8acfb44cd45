//! ELF/BTF object loading.
