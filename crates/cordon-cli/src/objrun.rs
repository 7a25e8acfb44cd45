//! `cordon run OBJ`: load an object with the embedding API and run one program.

use anyhow::{Result, bail};

use crate::run::RunArgs;

pub fn run(args: &RunArgs) -> Result<()> {
    bail!(
        "{}: running BPF objects needs the cordon embedding API, which is not built yet",
        args.file.display()
    )
}
