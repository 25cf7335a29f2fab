package io.tandem.control;

import com.google.protobuf.UnsafeByteOperations;
import io.tandem.engine.InvalidArgumentException;
import io.tandem.kvcache.KvCacheSpec;
import io.tandem.kvcache.KvDtype;
import io.tandem.kvcache.KvHandle;
import io.tandem.kvcache.PageSummaries;

/** {@link KvHandle} ↔ {@code tandem.v1.KvHandle}. */
public final class KvHandleMessages {
    private KvHandleMessages() {}

    /**
     * @param kvAddress where the owner serves the pages ({@code host:port} of its KV data plane),
     *                  or {@code ""} when the receiver reaches the pages another way (in-process)
     */
    public static io.tandem.proto.v1.KvHandle toProto(KvHandle handle, String kvAddress) {
        io.tandem.proto.v1.KvHandle.Builder m = io.tandem.proto.v1.KvHandle.newBuilder()
                .setWorkerId(handle.workerId())
                .setEpoch(handle.epoch())
                .setLeaseId(handle.leaseId())
                .setNumTokens(handle.numTokens())
                .setSpec(toProto(handle.spec()))
                .setKvAddress(kvAddress);
        for (int id : handle.blockIds()) {
            m.addBlockIds(id);
        }
        if (handle.pageSummaries() != null) {
            m.setPageSummaries(toProto(handle.pageSummaries()));
        }
        return m.build();
    }

    /** The summaries' bytes, wrapped without a second copy. */
    public static io.tandem.proto.v1.KvPageSummaries toProto(PageSummaries summaries) {
        return io.tandem.proto.v1.KvPageSummaries.newBuilder()
                .setData(UnsafeByteOperations.unsafeWrap(summaries.toByteArray()))
                .build();
    }

    /**
     * The page summaries of {@code handle}'s pages.
     *
     * @param field the message's field name, for errors (e.g. {@code kv_handle.page_summaries})
     * @throws InvalidArgumentException naming {@code field} when the bytes do not fit the handle's geometry
     */
    public static PageSummaries fromProto(io.tandem.proto.v1.KvPageSummaries m, KvHandle handle, String field) {
        try {
            return PageSummaries.fromBytes(handle.spec(), handle.blockIds().length, m.getData().asReadOnlyByteBuffer());
        } catch (IllegalArgumentException e) {
            throw new InvalidArgumentException(field, field + ".data: " + e.getMessage());
        }
    }

    /**
     * @throws InvalidArgumentException naming the field ({@code kv_handle.worker_id},
     *         {@code kv_handle.spec}, {@code kv_handle.block_ids}, …) when the handle is not one
     */
    public static KvHandle fromProto(io.tandem.proto.v1.KvHandle m) {
        if (m.getWorkerId().isEmpty()) {
            throw new InvalidArgumentException("kv_handle.worker_id", "kv_handle.worker_id must be set");
        }
        if (m.getNumTokens() < 1) {
            throw new InvalidArgumentException("kv_handle.num_tokens", "kv_handle.num_tokens must be >= 1, got " + m.getNumTokens());
        }
        KvCacheSpec spec = fromProto(m.getSpec());
        int[] blockIds = new int[m.getBlockIdsCount()];
        for (int i = 0; i < blockIds.length; i++) {
            blockIds[i] = m.getBlockIds(i);
            if (blockIds[i] < 0) {
                throw new InvalidArgumentException("kv_handle.block_ids", "kv_handle.block_ids[" + i + "] must be >= 0, got " + blockIds[i]);
            }
        }
        KvHandle handle;
        try {
            handle = new KvHandle(m.getWorkerId(), m.getEpoch(), m.getLeaseId(), blockIds, m.getNumTokens(), spec);
        } catch (IllegalArgumentException e) {
            throw new InvalidArgumentException("kv_handle.block_ids", e.getMessage());
        }
        return m.hasPageSummaries()
                ? handle.withPageSummaries(fromProto(m.getPageSummaries(), handle, "kv_handle.page_summaries"))
                : handle;
    }

    public static io.tandem.proto.v1.KvCacheSpec toProto(KvCacheSpec spec) {
        return io.tandem.proto.v1.KvCacheSpec.newBuilder()
                .setNumLayers(spec.numLayers())
                .setNumKvHeads(spec.numKvHeads())
                .setHeadDim(spec.headDim())
                .setBlockSize(spec.blockSize())
                .setDtype(toProto(spec.dtype()))
                .build();
    }

    /** @throws InvalidArgumentException ({@code kv_handle.spec}) when the geometry is not positive or the dtype unknown */
    public static KvCacheSpec fromProto(io.tandem.proto.v1.KvCacheSpec m) {
        KvDtype dtype = fromProto(m.getDtype());
        try {
            return new KvCacheSpec(m.getNumLayers(), m.getNumKvHeads(), m.getHeadDim(), m.getBlockSize(), dtype);
        } catch (IllegalArgumentException e) {
            throw new InvalidArgumentException("kv_handle.spec", "kv_handle.spec: " + e.getMessage());
        }
    }

    static io.tandem.proto.v1.KvDtype toProto(KvDtype dtype) {
        return switch (dtype) {
            case F32 -> io.tandem.proto.v1.KvDtype.KV_DTYPE_F32;
            case F16 -> io.tandem.proto.v1.KvDtype.KV_DTYPE_F16;
        };
    }

    static KvDtype fromProto(io.tandem.proto.v1.KvDtype dtype) {
        return switch (dtype) {
            case KV_DTYPE_F32 -> KvDtype.F32;
            case KV_DTYPE_F16 -> KvDtype.F16;
            case KV_DTYPE_UNSPECIFIED, UNRECOGNIZED -> throw new InvalidArgumentException("kv_handle.spec.dtype",
                    "kv_handle.spec.dtype must be KV_DTYPE_F32 or KV_DTYPE_F16, got " + dtype);
        };
    }
}
