//! Print the report of BPF object files: `cargo run --example inspect -- file.o...`

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        println!("== {path}");
        match std::fs::read(&path) {
            Ok(bytes) => match cordon_object::Object::parse(&bytes) {
                Ok(obj) => print!("{obj}"),
                Err(e) => {
                    println!("error: {e}");
                    failed = true;
                }
            },
            Err(e) => {
                println!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
