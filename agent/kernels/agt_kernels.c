/*  The kernel registry: one table of every built-in kernel, looked up by
    canonical type name (aliases are resolved by common/p2c_tasks.c before
    the agent gets here). */
#include "agt_kernel.h"
#include "agt_kernels_list.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const agt_kernel_t s_kernels [] = {
    { "encryption", K_ENCRYPTION_VERSION, k_encryption_run, K_ENCRYPTION_REFERENCE },
    { "compression", K_COMPRESSION_VERSION, k_compression_run, K_COMPRESSION_REFERENCE },
    { "ai_dialogue", K_DIALOGUE_VERSION, k_dialogue_run, K_DIALOGUE_REFERENCE },
    { "ai_pathfinding", K_PATHFINDING_VERSION, k_pathfinding_run, K_PATHFINDING_REFERENCE },
    { "ai_procedural", K_PROCEDURAL_VERSION, k_procedural_run, K_PROCEDURAL_REFERENCE },
    { "rt_reflections", K_RT_VERSION, k_rt_reflections_run, K_RT_REFLECTIONS_REFERENCE },
    { "rt_shadows", K_RT_VERSION, k_rt_shadows_run, K_RT_SHADOWS_REFERENCE },
    { "rt_global_illumination", K_RT_VERSION, k_rt_gi_run, K_RT_GI_REFERENCE },
    { "physics_rigid_body", K_RIGID_BODY_VERSION, k_rigid_body_run, K_RIGID_BODY_REFERENCE },
    { "physics_cloth", K_CLOTH_VERSION, k_cloth_run, K_CLOTH_REFERENCE },
    { "physics_fluid", K_FLUID_VERSION, k_fluid_run, K_FLUID_REFERENCE },
    { "physics_destruction", K_DESTRUCTION_VERSION, k_destruction_run, K_DESTRUCTION_REFERENCE },
    { "frame_upscale", K_UPSCALE_VERSION, k_upscale_run, K_UPSCALE_REFERENCE },
    { NULL, NULL, NULL, NULL }
};

const agt_kernel_t *
agt_kernel_find (const char *name)
{
    if (!name)
        return NULL;
    for (const agt_kernel_t *k = s_kernels; k->name; k++)
        if (!strcmp (k->name, name))
            return k;
    return NULL;
}

const agt_kernel_t *
agt_kernels (void)
{
    return s_kernels;
}

int
agt_kernel_fail (agt_kernel_out_t *out, const char *code, const char *fmt, ...)
{
    snprintf (out->error_code, sizeof out->error_code, "%s", code);
    va_list args;
    va_start (args, fmt);
    vsnprintf (out->error, sizeof out->error, fmt, args);
    va_end (args);
    //  A failed run leaves nothing behind, so the caller never sees half a result
    json_decref (out->result);
    out->result = NULL;
    free (out->blob);
    out->blob = NULL;
    out->blob_len = 0;
    return -1;
}

void
agt_kernel_out_reset (agt_kernel_out_t *out)
{
    if (!out)
        return;
    json_decref (out->result);
    free (out->blob);
    memset (out, 0, sizeof *out);
}
