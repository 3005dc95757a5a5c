//! The seccomp filter every worker installs on itself before user code runs: a short classic-BPF
//! denylist (socket families beyond Unix and IP, namespaces and mounts, tracing other processes,
//! kernel keyrings, BPF, io_uring, module and clock changes, memfds) that code, children and threads
//! included, can never lift. Built here for the architecture agentopt was compiled for; the worker
//! gets the program as hex and installs it with `seccomp(2)` (all threads at once).

use libc::c_long;

/// `seccomp(SECCOMP_SET_MODE_FILTER, ...)` and its flag making the filter every thread's.
pub const SECCOMP_SET_MODE_FILTER: u32 = 1;
pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

const LD_W_ABS: u16 = 0x20;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGE_K: u16 = 0x35;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// Offsets into `struct seccomp_data`: the call number, the audit architecture, the low 32 bits of
/// the first argument (little-endian).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Calls no math code needs and sandbox escapes are made of: refused with EPERM.
const DENIED: &[c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// Refused with ENOSYS, so callers take their fallback: glibc retries `clone3` (whose flags a
/// classic filter cannot read) as `clone`, whose flags are checked below. `memfd_create`: memory
/// no address-space limit sees.
const UNAVAILABLE: &[c_long] = &[libc::SYS_clone3, libc::SYS_memfd_create];

/// The socket families code may open: Unix and IP (inside a network namespace with no interface
/// but a loopback that is down, IP reaches nothing). AF_VSOCK, AF_NETLINK, AF_PACKET and the rest
/// get EAFNOSUPPORT.
const SOCKET_FAMILIES: &[u32] = &[libc::AF_UNIX as u32, libc::AF_INET as u32, libc::AF_INET6 as u32];

/// `clone` flags making a new namespace (a user namespace would give code capabilities in it).
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u32;

/// One classic-BPF instruction; jumps are resolved from labels when the program is assembled.
#[derive(Debug, Clone, Copy)]
enum Op {
    Load(u32),
    /// Jump to the label when the accumulator equals `k`, else fall through.
    JumpIfEqual(u32, Label),
    /// Fall through when the accumulator equals `k`, else jump to the label.
    JumpUnlessEqual(u32, Label),
    JumpIfAtLeast(u32, Label),
    JumpIfAnyBit(u32, Label),
    Return(u32),
    Mark(Label),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Allow,
    Deny,
    Unavailable,
    Kill,
    NotSocket,
    NotClone,
}

/// The filter as the bytes of a `sock_filter` array (8 bytes per instruction, native endian).
pub fn program() -> Vec<u8> {
    assemble(&ops()).iter().flat_map(|&(code, jt, jf, k)| encode(code, jt, jf, k)).collect()
}

/// The program as the worker receives it.
pub fn program_hex() -> String {
    hex::encode(program())
}

fn ops() -> Vec<Op> {
    use Label::*;
    let mut ops = vec![Op::Load(ARCH), Op::JumpUnlessEqual(AUDIT_ARCH, Kill), Op::Load(NR)];
    // The x32 ABI reaches the same calls under other numbers (bit 30): none of them is allowed.
    #[cfg(target_arch = "x86_64")]
    ops.push(Op::JumpIfAtLeast(0x4000_0000, Deny));
    ops.extend(DENIED.iter().map(|&nr| Op::JumpIfEqual(nr as u32, Deny)));
    ops.extend(UNAVAILABLE.iter().map(|&nr| Op::JumpIfEqual(nr as u32, Unavailable)));
    ops.push(Op::JumpUnlessEqual(libc::SYS_socket as u32, NotSocket));
    ops.push(Op::Load(ARG0_LOW));
    ops.extend(SOCKET_FAMILIES.iter().map(|&family| Op::JumpIfEqual(family, Allow)));
    ops.push(Op::Return(RET_ERRNO | libc::EAFNOSUPPORT as u32));
    ops.push(Op::Mark(NotSocket));
    ops.push(Op::JumpUnlessEqual(libc::SYS_clone as u32, NotClone));
    ops.push(Op::Load(ARG0_LOW));
    ops.push(Op::JumpIfAnyBit(NAMESPACE_FLAGS, Deny));
    ops.push(Op::Mark(NotClone));
    ops.push(Op::Mark(Allow));
    ops.push(Op::Return(RET_ALLOW));
    ops.push(Op::Mark(Deny));
    ops.push(Op::Return(RET_ERRNO | libc::EPERM as u32));
    ops.push(Op::Mark(Unavailable));
    ops.push(Op::Return(RET_ERRNO | libc::ENOSYS as u32));
    ops.push(Op::Mark(Kill));
    ops.push(Op::Return(RET_KILL_PROCESS));
    ops
}

/// Resolves labels to the forward offsets classic BPF jumps by (`jt`/`jf` count instructions after
/// the jump; they are 8 bits, which a program this short never exceeds).
fn assemble(ops: &[Op]) -> Vec<(u16, u8, u8, u32)> {
    let mut positions = Vec::new();
    let mut index = 0usize;
    for op in ops {
        match op {
            Op::Mark(label) => positions.push((*label, index)),
            _ => index += 1,
        }
    }
    let at =
        |label: Label| positions.iter().find(|(l, _)| *l == label).map(|(_, i)| *i).expect("a marked label");
    let mut out = Vec::new();
    for op in ops {
        let here = out.len();
        let offset = |label: Label| {
            let distance = at(label) - here - 1;
            u8::try_from(distance).expect("a jump within 255 instructions")
        };
        out.push(match *op {
            Op::Load(offset) => (LD_W_ABS, 0, 0, offset),
            Op::JumpIfEqual(k, label) => (JMP_JEQ_K, offset(label), 0, k),
            Op::JumpUnlessEqual(k, label) => (JMP_JEQ_K, 0, offset(label), k),
            Op::JumpIfAtLeast(k, label) => (JMP_JGE_K, offset(label), 0, k),
            Op::JumpIfAnyBit(k, label) => (JMP_JSET_K, offset(label), 0, k),
            Op::Return(k) => (RET_K, 0, 0, k),
            Op::Mark(_) => continue,
        });
    }
    out
}

fn encode(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[..2].copy_from_slice(&code.to_ne_bytes());
    bytes[2] = jt;
    bytes[3] = jf;
    bytes[4..].copy_from_slice(&k.to_ne_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one call the way the kernel would (classic BPF, only the instructions
    /// the assembler emits).
    fn verdict(nr: c_long, arch: u32, arg0: u32) -> u32 {
        let program = assemble(&ops());
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let (code, jt, jf, k) = program[pc];
            pc += 1;
            match code {
                LD_W_ABS => {
                    acc = match k {
                        NR => nr as u32,
                        ARCH => arch,
                        ARG0_LOW => arg0,
                        _ => panic!("unexpected load offset {k}"),
                    }
                }
                JMP_JEQ_K => pc += usize::from(if acc == k { jt } else { jf }),
                JMP_JGE_K => pc += usize::from(if acc >= k { jt } else { jf }),
                JMP_JSET_K => pc += usize::from(if acc & k != 0 { jt } else { jf }),
                RET_K => return k,
                _ => panic!("unexpected instruction {code:#x}"),
            }
        }
    }

    #[test]
    fn ordinary_calls_pass_and_escapes_are_refused() {
        let ok = |nr| verdict(nr, AUDIT_ARCH, 0);
        assert_eq!(ok(libc::SYS_read), RET_ALLOW);
        assert_eq!(ok(libc::SYS_mmap), RET_ALLOW);
        assert_eq!(ok(libc::SYS_mount), RET_ERRNO | libc::EPERM as u32);
        assert_eq!(ok(libc::SYS_ptrace), RET_ERRNO | libc::EPERM as u32);
        assert_eq!(ok(libc::SYS_clone3), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(ok(libc::SYS_memfd_create), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(verdict(libc::SYS_read, 0x4000_0003, 0), RET_KILL_PROCESS, "another architecture");
    }

    #[test]
    fn sockets_beyond_unix_and_ip_are_refused() {
        let socket = |family: i32| verdict(libc::SYS_socket, AUDIT_ARCH, family as u32);
        for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            assert_eq!(socket(family), RET_ALLOW);
        }
        for family in [libc::AF_VSOCK, libc::AF_NETLINK, libc::AF_PACKET, libc::AF_ALG] {
            assert_eq!(socket(family), RET_ERRNO | libc::EAFNOSUPPORT as u32);
        }
    }

    #[test]
    fn threads_and_forks_pass_but_new_namespaces_do_not() {
        let clone = |flags: i32| verdict(libc::SYS_clone, AUDIT_ARCH, flags as u32);
        let thread =
            libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD;
        assert_eq!(clone(thread), RET_ALLOW);
        assert_eq!(clone(libc::SIGCHLD), RET_ALLOW);
        assert_eq!(clone(libc::CLONE_NEWUSER | libc::SIGCHLD), RET_ERRNO | libc::EPERM as u32);
        assert_eq!(clone(libc::CLONE_NEWNET), RET_ERRNO | libc::EPERM as u32);
    }

    #[test]
    fn the_program_is_whole_instructions() {
        assert_eq!(program().len() % 8, 0);
        assert_eq!(program_hex().len(), program().len() * 2);
    }
}
