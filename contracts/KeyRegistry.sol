// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title keyledger key registry for permissioned EVM chains (Hyperledger Besu / GoQuorum, QBFT)
/// @notice Holds identity -> key record (hashes only), revocations, rotations, hash anchors and
/// audit events. Every accepted call carries the keyledger transaction it implements (the
/// registrar-signed canonical envelope) and emits it with its RFC 6962 leaf hash, so each keyledger
/// node derives the same ordered ledger from the chain and can check it. Full armored keys live in
/// the envelope (an event), only their hashes in storage.
/// Who may call mirrors the embedded engine's permission table (src/ledger/permissions.ts); the
/// state rules (one active key per identity, one identity per key) are the ledger's alone:
///   KeyRegistered, KeyRotated, KeyRevoked, DeviceAdded, DeviceRevoked, RecoveryKeySet, Recovered,
///   HashAnchored, AuditEvent: a registrar;
///   RegistrarAdded/Removed, RoleGranted/Revoked: the governor (a multisig in production).
contract KeyRegistry {
    enum Status { None, Active, Revoked }

    struct Record {
        bytes32 fingerprint; // sha256 of the lowercase hex fingerprint
        bytes32 keyHash;     // sha256 of the armored public key
        Status status;
        uint32 rotations;
        bool admin;
    }

    address public governor;
    mapping(address => bool) public registrars;
    mapping(bytes32 => Record) private records;        // sha256(identity) -> record
    mapping(bytes32 => bytes32) public fingerprintOwner; // sha256(fingerprint) -> sha256(identity)
    mapping(bytes32 => uint256) public anchoredAt;      // anchored hash -> block number
    /// An identity's further device keys: sha256(identity) -> sha256(fingerprint) -> sha256(armored
    /// key), zero once revoked (docs/ledger.md "Devices"; the top-level key stays in `records`).
    mapping(bytes32 => mapping(bytes32 => bytes32)) public deviceKeys;
    /// An identity's recovery key: sha256(identity) -> sha256(armored key) (docs/ledger.md "Recovery").
    mapping(bytes32 => bytes32) public recoveryKeys;
    uint64 public txCount;
    /// The keyledger ledger this contract orders: the chain id (SHA-256 of the genesis) of its
    /// ledger, set once by the governor. A server whose data directory holds another ledger refuses
    /// to start against it (docs/deploy-besu.md "A second server").
    bytes32 public keyledgerChain;

    /// One keyledger transaction, in chain order: seq, its leaf hash (txid) and the envelope.
    event KeyledgerTx(uint64 indexed seq, bytes32 indexed txid, bytes envelope);
    /// The key record a registration or rotation stored, as read back from storage, emitted just
    /// before its KeyledgerTx: followers check the envelope's key against it from the logs alone,
    /// never from historical state (a node that reloads or prunes its state keeps its logs).
    event KeyStored(bytes32 indexed id, bytes32 fingerprint, bytes32 keyHash);
    /// A device key added (keyHash) or revoked (zero), emitted just before its KeyledgerTx.
    event DeviceStored(bytes32 indexed id, bytes32 fingerprint, bytes32 keyHash);
    /// A recovery key set (RecoveryKeySet, and the next one in a recovery).
    event RecoveryStored(bytes32 indexed id, bytes32 fingerprint, bytes32 keyHash);
    event RegistrarChanged(address indexed account, bool allowed);
    event GovernorChanged(address indexed governor);
    event ChainBound(bytes32 indexed keyledgerChain);

    error NotGovernor();
    error NotRegistrar();
    error NotActive();
    error RoleUnchanged();
    error ChainAlreadyBound();

    modifier onlyGovernor() {
        if (msg.sender != governor) revert NotGovernor();
        _;
    }

    modifier onlyRegistrar() {
        if (!registrars[msg.sender]) revert NotRegistrar();
        _;
    }

    constructor(address firstRegistrar) {
        governor = msg.sender;
        registrars[firstRegistrar] = true;
        emit GovernorChanged(msg.sender);
        emit RegistrarChanged(firstRegistrar, true);
    }

    function _record(bytes calldata envelope) private {
        bytes32 txid = sha256(abi.encodePacked(bytes1(0x00), envelope));
        emit KeyledgerTx(txCount, txid, envelope);
        txCount += 1;
    }

    function record(bytes32 id) external view returns (Record memory) {
        return records[id];
    }

    function setGovernor(address next) external onlyGovernor {
        governor = next;
        emit GovernorChanged(next);
    }

    function bindChain(bytes32 chain) external onlyGovernor {
        if (keyledgerChain != bytes32(0)) revert ChainAlreadyBound();
        keyledgerChain = chain;
        emit ChainBound(chain);
    }

    function setRegistrar(address account, bool allowed) external onlyGovernor {
        registrars[account] = allowed;
        emit RegistrarChanged(account, allowed);
    }

    function registerKey(bytes32 id, bytes32 fingerprint, bytes32 keyHash, bytes calldata envelope)
        external
        onlyRegistrar
    {
        // No state rule refuses the call here: the ledger's rules decide (the follower leaves out
        // what they refuse). A rule here would let any registrar lock an identity out: a refused
        // envelope's call would still have changed this storage (docs/deploy-besu.md).
        Record storage r = records[id];
        records[id] = Record(fingerprint, keyHash, Status.Active, r.rotations, false);
        fingerprintOwner[fingerprint] = id;
        emit KeyStored(id, records[id].fingerprint, records[id].keyHash);
        _record(envelope);
    }

    function rotateKey(bytes32 id, bytes32 /* oldFingerprint: for readers; the ledger checks it */, bytes32 fingerprint, bytes32 keyHash, bytes calldata envelope)
        external
        onlyRegistrar
    {
        Record storage r = records[id];
        r.fingerprint = fingerprint;
        r.keyHash = keyHash;
        r.rotations += 1;
        fingerprintOwner[fingerprint] = id;
        emit KeyStored(id, r.fingerprint, r.keyHash);
        _record(envelope);
    }

    function revokeKey(bytes32 id, bytes32 /* fingerprint: for readers; the ledger checks it */, bytes calldata envelope)
        external
        onlyRegistrar
    {
        records[id].status = Status.Revoked;
        _record(envelope);
    }

    /// DeviceAdded (keyHash of the new key) and DeviceRevoked (zero). As for keys, no rule refuses
    /// the call here: the ledger's rules decide.
    function deviceKey(bytes32 id, bytes32 fingerprint, bytes32 keyHash, bytes calldata envelope)
        external
        onlyRegistrar
    {
        deviceKeys[id][fingerprint] = keyHash;
        fingerprintOwner[fingerprint] = id;
        emit DeviceStored(id, fingerprint, keyHash);
        _record(envelope);
    }

    /// RecoveryKeySet. As for keys, no rule refuses the call here: the ledger's rules decide.
    function recoveryKey(bytes32 id, bytes32 fingerprint, bytes32 keyHash, bytes calldata envelope)
        external
        onlyRegistrar
    {
        _storeRecovery(id, fingerprint, keyHash);
        _record(envelope);
    }

    /// Recovered: the new device's key becomes the record's key (KeyStored, right before the
    /// KeyledgerTx, as for a registration) and the next recovery key is stored.
    function recover(
        bytes32 id,
        bytes32 fingerprint,
        bytes32 keyHash,
        bytes32 recoveryFingerprint,
        bytes32 recoveryKeyHash,
        bytes calldata envelope
    ) external onlyRegistrar {
        _storeRecovery(id, recoveryFingerprint, recoveryKeyHash);
        Record storage r = records[id];
        records[id] = Record(fingerprint, keyHash, Status.Active, r.rotations, r.admin);
        fingerprintOwner[fingerprint] = id;
        emit KeyStored(id, records[id].fingerprint, records[id].keyHash);
        _record(envelope);
    }

    function _storeRecovery(bytes32 id, bytes32 fingerprint, bytes32 keyHash) private {
        recoveryKeys[id] = keyHash;
        fingerprintOwner[fingerprint] = id;
        emit RecoveryStored(id, fingerprint, keyHash);
    }

    function anchorHash(bytes32 hash, bytes calldata envelope) external onlyRegistrar {
        if (anchoredAt[hash] == 0) anchoredAt[hash] = block.number;
        _record(envelope);
    }

    function auditEvent(bytes calldata envelope) external onlyRegistrar {
        _record(envelope);
    }

    /// Governance changes of the keyledger ledger (registrar keys, identity roles) are also
    /// envelopes, approved by keyledger's validators inside; on chain only the governor may send them.
    function governance(bytes32 id, bool grantAdmin, bool roleChange, bytes calldata envelope) external onlyGovernor {
        if (roleChange) {
            Record storage r = records[id];
            if (r.status != Status.Active) revert NotActive();
            if (r.admin == grantAdmin) revert RoleUnchanged();
            r.admin = grantAdmin;
        }
        _record(envelope);
    }
}
