/*  Task type catalogue. The ceilings bound what one task can cost: a kernel's
    parameter bounds keep any one task under a few seconds on a laptop, so 60 s
    of billed compute is already generous. The versions are those of
    agent/kernels/agt_kernels_list.h: a version bump there lists the new
    version first here (keep the old one while peers still run it). */
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <assert.h>
#include <string.h>

static const p2c_task_type_t s_types [] = {
    //  2.0.0 only: 1.0.0 chained hex text, its results differ for the same
    //  input and must never be compared with or served for 2.0.0's
    { "encryption", "hash", 60000000, "2.0.0" },
    { "compression", NULL, 60000000, "1.0.0" },
    { "ai_dialogue", "ai_npc_dialogue", 60000000, "1.0.0" },
    { "ai_pathfinding", NULL, 60000000, "1.0.0" },
    { "ai_procedural", NULL, 60000000, "1.0.0" },
    //  1.1.0 only: it renders tiles, a 1.0.0 peer would ignore the tile and
    //  render the whole frame (no 1.0.0 agent is out there to keep)
    { "rt_reflections", "raytracing_reflections", 60000000, "1.1.0" },
    { "rt_shadows", NULL, 60000000, "1.1.0" },
    { "rt_global_illumination", NULL, 60000000, "1.1.0" },
    { "physics_rigid_body", NULL, 60000000, "1.0.0" },
    { "physics_cloth", NULL, 60000000, "1.0.0" },
    { "physics_fluid", NULL, 60000000, "1.0.0" },
    { "physics_destruction", NULL, 60000000, "1.0.0" },
    { "frame_upscale", "upscale", 60000000, "1.0.0" },
    { NULL, NULL, 0, NULL }
};

const char *
p2c_task_canonical (const char *name)
{
    if (!name)
        return NULL;
    for (const p2c_task_type_t *t = s_types; t->name; t++)
        if (!strcmp (t->name, name) || (t->alias && !strcmp (t->alias, name)))
            return t->name;
    return NULL;
}

const p2c_task_type_t *
p2c_task_type (const char *canonical)
{
    for (const p2c_task_type_t *t = s_types; t->name; t++)
        if (!strcmp (t->name, canonical))
            return t;
    return NULL;
}

bool
p2c_task_version_known (const p2c_task_type_t *type, const char *version)
{
    if (!type || !type->versions || !version || !*version)
        return false;
    size_t len = strlen (version);
    for (const char *p = type->versions; *p; ) {
        const char *end = strchr (p, ',');
        size_t n = end ? (size_t) (end - p) : strlen (p);
        if (n == len && !memcmp (p, version, len))
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

const char *
p2c_task_version_current (const p2c_task_type_t *type, char *buf, size_t size)
{
    assert (size > 0);
    const char *v = type && type->versions ? type->versions : "";
    size_t n = strcspn (v, ",");
    if (n >= size)
        n = size - 1;
    memcpy (buf, v, n);
    buf [n] = 0;
    return buf;
}

const p2c_task_type_t *
p2c_task_types (void)
{
    return s_types;
}

void
p2c_tasks_test (bool verbose)
{
    (void) verbose;
    P2C_CHECK (!strcmp (p2c_task_canonical ("hash"), "encryption"));
    P2C_CHECK (!strcmp (p2c_task_canonical ("encryption"), "encryption"));
    P2C_CHECK (!strcmp (p2c_task_canonical ("upscale"), "frame_upscale"));
    P2C_CHECK (!strcmp (p2c_task_canonical ("raytracing_reflections"), "rt_reflections"));
    P2C_CHECK (p2c_task_canonical ("mining") == NULL);
    P2C_CHECK (p2c_task_canonical (NULL) == NULL);
    P2C_CHECK (p2c_task_type ("compression")->max_billed_us > 0);
    const p2c_task_type_t *enc = p2c_task_type ("encryption");
    P2C_CHECK (p2c_task_version_known (enc, "2.0.0"));
    P2C_CHECK (!p2c_task_version_known (enc, "1.0.0"));
    P2C_CHECK (!p2c_task_version_known (enc, "2.0"));
    P2C_CHECK (!p2c_task_version_known (enc, "2.0.0x"));
    P2C_CHECK (!p2c_task_version_known (enc, "9.9.9-forged"));
    P2C_CHECK (!p2c_task_version_known (enc, ""));
    P2C_CHECK (!p2c_task_version_known (enc, NULL));
    p2c_task_type_t two = { "x", NULL, 1, "2.0.0,1.0.0" };
    char buf [16];
    P2C_CHECK (p2c_task_version_known (&two, "1.0.0") && p2c_task_version_known (&two, "2.0.0"));
    P2C_CHECK (!p2c_task_version_known (&two, "2.0.0,1.0.0"));
    P2C_CHECK (!strcmp (p2c_task_version_current (&two, buf, sizeof buf), "2.0.0"));
    P2C_CHECK (!strcmp (p2c_task_version_current (enc, buf, sizeof buf), "2.0.0"));
    P2C_CHECK (!strcmp (p2c_task_version_current (p2c_task_type ("rt_shadows"), buf, sizeof buf),
                        "1.1.0"));
    int n = 0;
    for (const p2c_task_type_t *t = p2c_task_types (); t->name; t++)
        n++;
    P2C_CHECK (n == 13);
}
