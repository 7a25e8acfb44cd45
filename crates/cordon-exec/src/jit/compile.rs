//! Driving Cranelift: target ISA, module, one Cranelift function per BPF function.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cordon_isa::Program;
use cranelift_codegen::Context;
use cranelift_codegen::ir::{Function as ClFunction, UserFuncName};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{ArenaMemoryProvider, JITBuilder, JITModule};
use cranelift_module::{FuncId, Module, default_libcall_names};

use super::analysis::{self, ARGS, Function, RegSet};
use super::translate::{self, CalleeRef, Flavor, Imports, Tr, Variant};
use super::{JitConfig, JitError, OptLevel, RegAlloc};
use crate::decode::Op;

/// Target ISA for a configuration, built once per (target, opt level).
pub(crate) fn isa_for(config: &JitConfig) -> Result<OwnedTargetIsa, JitError> {
    static HOST: [OnceLock<Result<OwnedTargetIsa, String>>; 6] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let build = || -> Result<OwnedTargetIsa, String> {
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| format!("setting {k}={v}: {e}"))
        };
        set(&mut flags, "opt_level", config.opt_level.as_str())?;
        set(
            &mut flags,
            "enable_verifier",
            if config.verify { "true" } else { "false" },
        )?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "unwind_info", "false")?;
        set(
            &mut flags,
            "regalloc_algorithm",
            match config.regalloc {
                RegAlloc::Backtracking => "backtracking",
                RegAlloc::SinglePass => "single_pass",
            },
        )?;
        set(&mut flags, "enable_multi_ret_implicit_sret", "true")?;
        let builder = match &config.target {
            None => cranelift_native::builder().map_err(|e| format!("host not supported: {e}"))?,
            Some(triple) => {
                let t = triple
                    .parse()
                    .map_err(|e| format!("bad target triple {triple:?}: {e}"))?;
                cranelift_codegen::isa::lookup(t).map_err(|e| format!("{triple}: {e}"))?
            }
        };
        builder
            .finish(settings::Flags::new(flags))
            .map_err(|e| format!("building the target ISA: {e}"))
    };
    if config.target.is_some() || config.verify {
        return build().map_err(JitError::Target);
    }
    let opt = match config.opt_level {
        OptLevel::None => 0,
        OptLevel::Speed => 1,
        OptLevel::SpeedAndSize => 2,
    };
    let slot = &HOST[opt * 2 + (config.regalloc == RegAlloc::SinglePass) as usize];
    slot.get_or_init(build).clone().map_err(JitError::Target)
}

/// Programs of at least this many translated instructions are compiled with
/// [`OptLevel::None`] even when [`OptLevel::Speed`] is asked for (the
/// environment variable `CORDON_JIT_FAST_TIER=<insns>` moves the threshold;
/// `0` disables the tier).
///
/// Why: Cranelift's e-graph pass keeps loads in place but schedules pure
/// arithmetic at its first side-effecting use, so in a long basic block every
/// loaded value stays live until the end of the chain that consumes it (an
/// unrolled loop of 512 loads had them all live at once: 17 KiB of spill code,
/// slower than unoptimised code, and register allocation 4x slower). BPF
/// from clang is already optimised; instruction selection (address modes,
/// memory operands, extensions) is the same at both levels.
pub(crate) const FAST_TIER_INSNS: usize = 1024;

fn fast_tier_threshold() -> usize {
    static T: OnceLock<usize> = OnceLock::new();
    *T.get_or_init(|| {
        std::env::var("CORDON_JIT_FAST_TIER")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(
                FAST_TIER_INSNS,
                |n: usize| if n == 0 { usize::MAX } else { n },
            )
    })
}

/// `CORDON_JIT_TIMING` is set: print the compile phases of each program.
fn timing() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("CORDON_JIT_TIMING").is_some())
}

/// The configuration a program of `translated` instructions is compiled with.
fn tier(config: &JitConfig, translated: usize) -> JitConfig {
    let mut c = config.clone();
    if c.opt_level != OptLevel::None && translated >= fast_tier_threshold() {
        c.opt_level = OptLevel::None;
    }
    c
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<(Context, FunctionBuilderContext)>> =
        const { std::cell::RefCell::new(None) };
}

/// JIT memory and the code in it. Freed on drop.
pub(crate) struct Code {
    module: Option<JITModule>,
}

// SAFETY: after finalisation the module is never touched again except by `drop`,
// which has exclusive access; the code it holds is immutable.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the owning executable is being dropped: no invocation runs
            // and no pointer into the code survives.
            unsafe { m.free_memory() };
        }
    }
}

/// Result of compiling a program.
pub(crate) struct Compiled {
    pub code: Code,
    pub entry: *const u8,
    pub code_size: usize,
}

/// One function to generate: its body (reachable code from `entry`) and shape.
struct Plan {
    body: usize,
    variant: Variant,
    frame: u64,
    id: FuncId,
}

pub(crate) fn compile(
    prog: &Program,
    ops: &[Op],
    frame_of: &dyn Fn(usize) -> u64,
    flavor: Flavor,
    budget: u64,
    config: &JitConfig,
    sites: &crate::specialise::SiteTable,
) -> Result<Compiled, JitError> {
    let checked = flavor == Flavor::Checked;
    let t0 = std::time::Instant::now();

    // Functions and what each callee receives.
    let entries = analysis::function_entries(prog);
    let bodies: Vec<Function> = entries
        .iter()
        .map(|&e| analysis::analyse_function(prog, e))
        .collect();
    let index_of: BTreeMap<usize, usize> =
        entries.iter().enumerate().map(|(i, &e)| (e, i)).collect();
    let mut live: Vec<RegSet> = vec![0; entries.len()];
    loop {
        let mut changed = false;
        for i in 0..bodies.len() {
            let callee_in = |t: usize| live[index_of[&t]];
            let l = analysis::live_in(prog, &bodies[i], checked, &callee_in);
            // Checked callees hand r1-r5 back, so they take them all. Trusted
            // callees take exactly what they read before writing: for a
            // verified program a subset of r1-r5.
            let l = if checked { l | ARGS } else { l };
            if l != live[i] {
                live[i] = l;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let regs_of = |set: RegSet| -> Vec<u8> { (0..10u8).filter(|r| set & (1 << r) != 0).collect() };
    let call_targets: std::collections::BTreeSet<usize> = prog
        .kinds()
        .iter()
        .enumerate()
        .filter_map(|(pc, k)| match k {
            Some(cordon_isa::Kind::CallLocal { rel }) => {
                Some((pc as i64 + 1 + *rel as i64) as usize)
            }
            _ => None,
        })
        .collect();
    let is_callee: Vec<bool> = entries.iter().map(|e| call_targets.contains(e)).collect();

    // Address space for the code: reserved PROT_NONE up front (committed only as
    // used), sized from the instructions actually translated (a body shared by
    // several functions of an unverified program is translated into each) with
    // a wide margin over the largest per-instruction code size seen.
    let translated: usize = bodies[0].pcs.len()
        + bodies
            .iter()
            .zip(&is_callee)
            .filter(|(_, c)| **c)
            .map(|(b, _)| b.pcs.len())
            .sum::<usize>();
    let tiered = tier(config, translated);
    let isa = isa_for(&tiered)?;
    let endianness = isa.endianness();
    let call_conv = CallConv::triple_default(isa.triple());
    let arena_size = (1 << 20) + translated * if checked { 1024 } else { 256 };
    let provider = ArenaMemoryProvider::new_with_size(arena_size)
        .map_err(|e| JitError::Memory(e.to_string()))?;
    let mut jb = JITBuilder::with_isa(isa.clone(), default_libcall_names());
    jb.memory_provider(Box::new(provider));
    let mut module = JITModule::new(jb);
    let t_module = t0.elapsed();

    let mut plans: Vec<Plan> = Vec::new();
    let declare = |module: &mut JITModule, variant: &Variant| -> Result<FuncId, JitError> {
        let sig = translate::signature(call_conv, flavor, variant);
        module
            .declare_anonymous_function(&sig)
            .map_err(|e| JitError::Codegen(e.to_string()))
    };
    let main_variant = Variant::Main;
    let main_id = declare(&mut module, &main_variant)?;
    plans.push(Plan {
        body: 0,
        variant: main_variant,
        frame: frame_of(0),
        id: main_id,
    });
    // Which functions may stop the run (the caller then tests `status` after
    // calling them): falling off the end, LD_ABS/LD_IND, kfuncs, callx and
    // helper calls on the generic path, or a call of a function that may.
    // Helper calls lowered as specialised fast paths (`calls.rs`: direct
    // functions, inline array lookups) cannot stop the program.
    let may_stop = functions_that_may_stop(prog, &bodies, &index_of, sites);
    let mut callee_ids: BTreeMap<usize, (FuncId, Vec<u8>, bool)> = BTreeMap::new();
    for (i, &e) in entries.iter().enumerate() {
        if !is_callee[i] {
            continue;
        }
        let params = regs_of(live[i]);
        let variant = Variant::Callee {
            params: params.clone(),
        };
        let id = declare(&mut module, &variant)?;
        callee_ids.insert(e, (id, params, may_stop[i]));
        plans.push(Plan {
            body: i,
            variant,
            frame: frame_of(e),
            id,
        });
    }

    // Cranelift's contexts are reused across compilations on a thread (their
    // buffers stay allocated).
    let (mut ctx, mut fctx) = SCRATCH
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(|| (Context::new(), FunctionBuilderContext::new()));
    let slow_check_id = if checked {
        Some(define_slow_check(
            &mut module,
            call_conv,
            &mut ctx,
            &mut fctx,
        )?)
    } else {
        None
    };
    let dump = std::env::var_os("CORDON_JIT_DUMP").is_some();
    ctx.set_disasm(dump);
    let mut code_size = 0usize;
    for plan in &plans {
        let sig = translate::signature(call_conv, flavor, &plan.variant);
        ctx.func = ClFunction::with_name_signature(UserFuncName::user(0, plan.id.as_u32()), sig);
        {
            let mut builder = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let tramp_sig = builder.import_signature(translate::trampoline_signature(call_conv));
            let fault_sig = {
                let mut s = cranelift_codegen::ir::Signature::new(call_conv);
                for _ in 0..3 {
                    s.params.push(cranelift_codegen::ir::AbiParam::new(
                        cranelift_codegen::ir::types::I64,
                    ));
                }
                builder.import_signature(s)
            };
            let slow_check = slow_check_id.map(|id| module.declare_func_in_func(id, builder.func));
            let zero_sig = {
                let mut s = cranelift_codegen::ir::Signature::new(call_conv);
                for _ in 0..2 {
                    s.params.push(cranelift_codegen::ir::AbiParam::new(
                        cranelift_codegen::ir::types::I64,
                    ));
                }
                builder.import_signature(s)
            };
            // Import every callee this body may call.
            let mut refs: BTreeMap<usize, CalleeRef> = BTreeMap::new();
            for &pc in &bodies[plan.body].pcs {
                if let Some(cordon_isa::Kind::CallLocal { rel }) = prog.kind(pc) {
                    let t = (pc as i64 + 1 + rel as i64) as usize;
                    if refs.contains_key(&t) {
                        continue;
                    }
                    let (id, params, may_stop) = &callee_ids[&t];
                    let func = module.declare_func_in_func(*id, builder.func);
                    refs.insert(
                        t,
                        CalleeRef {
                            func,
                            params: params.clone(),
                            may_stop: *may_stop,
                        },
                    );
                }
            }
            let imports = Imports {
                tramp_sig,
                fault_sig,
                slow_check,
                zero_sig,
                callee: Box::new(move |t| refs.get(&t).cloned()),
                site: {
                    let sites = sites.clone();
                    Box::new(move |pc| sites.get(pc).copied())
                },
            };
            let tr = Tr::new(
                builder,
                prog,
                ops,
                &bodies[plan.body],
                flavor,
                plan.variant.clone(),
                plan.frame,
                endianness,
                imports,
                budget,
            );
            let builder = tr.run();
            builder.finalize(isa.frontend_config());
        }
        if dump {
            eprintln!("{}", ctx.func.display());
        }
        module
            .define_function(plan.id, &mut ctx)
            .map_err(|e| JitError::Codegen(format!("{e:?}")))?;
        if dump && let Some(vcode) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
            eprintln!("{vcode}");
        }
        code_size += ctx
            .compiled_code()
            .map(|c| c.code_buffer().len())
            .unwrap_or(0);
        module.clear_context(&mut ctx);
    }
    ctx.set_disasm(false);
    SCRATCH.with(|s| *s.borrow_mut() = Some((ctx, fctx)));
    let t_defined = t0.elapsed();
    module
        .finalize_definitions()
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    if timing() {
        eprintln!(
            "cordon jit: {} insns: setup {:?}, codegen {:?}, finalize {:?}",
            translated,
            t_module,
            t_defined - t_module,
            t0.elapsed() - t_defined
        );
    }
    let entry = module.get_finalized_function(main_id);
    Ok(Compiled {
        code: Code {
            module: Some(module),
        },
        entry,
        code_size,
    })
}

/// For each function of `bodies`, whether running it may stop the program
/// (a least fixed point over local calls, so recursion through functions
/// that cannot stop does not count).
fn functions_that_may_stop(
    prog: &Program,
    bodies: &[Function],
    index_of: &BTreeMap<usize, usize>,
    sites: &crate::specialise::SiteTable,
) -> Vec<bool> {
    use cordon_isa::Kind;
    let mut may_stop = vec![false; bodies.len()];
    loop {
        let mut changed = false;
        for (i, f) in bodies.iter().enumerate() {
            if may_stop[i] {
                continue;
            }
            let stops = f.pcs.iter().any(|&pc| {
                let Some(k) = prog.kind(pc) else {
                    return true;
                };
                let off_end = matches!(
                    analysis::flow(&k, pc),
                    analysis::Flow::Next(t) if t >= prog.len()
                );
                off_end
                    || match k {
                        Kind::CallHelper { .. } => sites.get(pc).is_none(),
                        Kind::CallLocal { rel } => {
                            let t = (pc as i64 + 1 + rel as i64) as usize;
                            index_of.get(&t).is_none_or(|&j| may_stop[j])
                        }
                        Kind::CallKfunc { .. }
                        | Kind::Callx { .. }
                        | Kind::LdAbs { .. }
                        | Kind::LdInd { .. } => true,
                        _ => false,
                    }
            });
            if stops {
                may_stop[i] = true;
                changed = true;
            }
        }
        if !changed {
            return may_stop;
        }
    }
}

/// The slow path of the checked-mode access check, shared by every access of the
/// module: `(ctx, addr, access << 8 | size, index)`, `PreserveAll` so call sites
/// keep every register. Asks the run context about host-given and granted
/// regions and, when the access is not allowed, records the error (`status` is
/// set; the caller tests it).
fn define_slow_check(
    module: &mut JITModule,
    call_conv: CallConv,
    ctx: &mut Context,
    fctx: &mut FunctionBuilderContext,
) -> Result<FuncId, JitError> {
    use cranelift_codegen::ir::types::I64;
    use cranelift_codegen::ir::{AbiParam, InstBuilder, Signature};
    let mut sig = Signature::new(CallConv::PreserveAll);
    for _ in 0..3 {
        sig.params.push(AbiParam::new(I64));
    }
    let id = module
        .declare_anonymous_function(&sig)
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    ctx.func = ClFunction::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let mut check = Signature::new(call_conv);
        for _ in 0..3 {
            check.params.push(AbiParam::new(I64));
        }
        check.returns.push(AbiParam::new(I64));
        let check = b.import_signature(check);
        let mut fault = Signature::new(call_conv);
        for _ in 0..3 {
            fault.params.push(AbiParam::new(I64));
        }
        let fault = b.import_signature(fault);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p = b.block_params(entry).to_vec();
        let f = b.ins().iconst(
            I64,
            super::runtime::jit_check_extra as *const () as usize as i64,
        );
        let call = b.ins().call_indirect(check, f, &[p[0], p[1], p[2]]);
        // p = (ctx, addr, site); the site's aux is `access << 8 | size`.
        let ok = b.inst_results(call)[0];
        let done = b.create_block();
        let bad = b.create_block();
        b.ins().brif(ok, done, &[], bad, &[]);
        b.switch_to_block(bad);
        let f = b
            .ins()
            .iconst(I64, super::runtime::jit_fault as *const () as usize as i64);
        b.ins().call_indirect(fault, f, &[p[0], p[2], p[1]]);
        b.ins().jump(done, &[]);
        b.switch_to_block(done);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(module.isa().frontend_config());
    }
    module
        .define_function(id, ctx)
        .map_err(|e| JitError::Codegen(format!("{e:?}")))?;
    module.clear_context(ctx);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specialise::{CallSites, CallSpec, DirectFn, SiteTable};
    use cordon_isa::assemble;

    unsafe extern "C" fn id(a: u64) -> u64 {
        a
    }

    /// main calls f (pc 3) and g; f calls helper 1 and recurses into itself;
    /// g calls f and helper 2.
    const SRC: &str = "mov %r1, 1\ncall 1\ncall local g\nexit\n\
                       f:\ncall 1\ncall local f\nexit\n\
                       g:\ncall local f\ncall 2\nexit\n";

    fn may_stop(direct: &[usize]) -> Vec<bool> {
        let prog = Program::new(assemble(SRC).expect("assembles")).expect("valid");
        let entries = analysis::function_entries(&prog);
        assert_eq!(entries, vec![0, 4, 7]);
        let bodies: Vec<Function> = entries
            .iter()
            .map(|&e| analysis::analyse_function(&prog, e))
            .collect();
        let index_of = entries.iter().enumerate().map(|(i, &e)| (e, i)).collect();
        let mut b = CallSites::builder(&prog);
        for &pc in direct {
            // SAFETY: `id` reads only its argument.
            unsafe {
                b.specialise(
                    pc,
                    CallSpec::Direct {
                        func: DirectFn::A1(id),
                        bind: None,
                    },
                )
            }
            .expect("a helper call");
        }
        let sites = SiteTable::new(&b.build(), &prog, true);
        functions_that_may_stop(&prog, &bodies, &index_of, &sites)
    }

    #[test]
    fn generic_helper_calls_may_stop_through_every_caller() {
        assert_eq!(may_stop(&[]), vec![true, true, true]);
        // f's helper is direct, g's is not: g (and main through g) may stop.
        assert_eq!(may_stop(&[4]), vec![true, false, true]);
    }

    #[test]
    fn functions_with_only_specialised_calls_cannot_stop_even_when_recursive() {
        assert_eq!(may_stop(&[1, 4, 8]), vec![false, false, false]);
        // main's own generic call does not make its callees stop.
        assert_eq!(may_stop(&[4, 8]), vec![true, false, false]);
    }
}
