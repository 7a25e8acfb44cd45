//! Rough per-run cost of the run paths on tests/bpf/xdp_firewall.o:
//! `cargo run --release -p cordon --example run_timing [iterations]`.

use std::time::Instant;

use cordon::Engine;

fn main() -> Result<(), cordon::Error> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/bpf/xdp_firewall.o"
    );
    let mut pkt = vec![0u8; 80];
    pkt[12] = 0x08;
    pkt[14] = 0x45;
    pkt[23] = 17;
    for (name, engine) in [
        ("interpreter", Engine::interpreter()),
        ("jit", Engine::jit()),
    ] {
        let obj = engine.load_file(path)?;
        let prog = obj.program("xdp_firewall")?;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(prog.run_xdp(&pkt)?);
        }
        let run = t.elapsed().as_nanos() as f64 / n as f64;
        let mut buf = pkt.clone();
        let t = Instant::now();
        for _ in 0..n {
            buf.clear();
            buf.extend_from_slice(&pkt);
            std::hint::black_box(prog.run_xdp_in_place(&mut buf)?);
        }
        let in_place = t.elapsed().as_nanos() as f64 / n as f64;
        println!("{name:12} run_xdp {run:8.1} ns/run   run_xdp_in_place {in_place:8.1} ns/run");
    }
    Ok(())
}
