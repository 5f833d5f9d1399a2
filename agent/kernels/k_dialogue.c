/*  ai_dialogue [ai_npc_dialogue]: an NPC's answer to a player's line by
    intent scoring. The line (and, at half weight, the context) is split into
    lower-case words; each intent sums the weights of its keywords found; the
    best score wins (ties: the earlier intent in the table). The reply is a
    template of that intent for the NPC's personality, picked by a hash of
    the line so equal input gives the same reply.
    Without player_input (the original demo's menu sends only character,
    context and personality: the NPC speaks first) the context drives the
    line: its words count at full weight, a word naming an intent
    ("greeting", "trade", ...) counts as that intent's strongest keyword,
    and the variant is picked by a hash of the context. Results with a
    player_input are unchanged by this. */
#include "agt_params.h"
#include "agt_kernels_list.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum { P_INPUT, P_NAME, P_PERSONALITY, P_CONTEXT, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_INPUT] = { .name = "player_input", .type = AGT_P_STRING, .min = 0, .max = 4096 },
    [P_NAME] = { .name = "npc_name", .alias = "character", .type = AGT_P_STRING, .def_s = "Guard", .min = 0, .max = 64 },
    [P_PERSONALITY] = { .name = "personality", .type = AGT_P_STRING, .def_s = "neutral", .min = 0, .max = 64 },
    [P_CONTEXT] = { .name = "context", .type = AGT_P_STRING, .def_s = "", .min = 0, .max = 4096 },
};

typedef struct {
    const char *word;
    double weight;
} keyword_t;

typedef struct {
    const char *category;
    const char *emotion;
    const char *animation;
    keyword_t keywords [16];
} intent_t;

static const intent_t s_intents [] = {
    { "greeting", "happy", "wave", { {"hello",2}, {"hi",2}, {"hey",2}, {"greetings",2}, {"morning",1},
      {"evening",1}, {"howdy",2}, {"welcome",1} } },
    { "farewell", "calm", "bow", { {"bye",2}, {"goodbye",2}, {"farewell",2}, {"later",1}, {"leave",1},
      {"leaving",1} } },
    { "quest", "focused", "point", { {"quest",2}, {"mission",2}, {"task",1.5}, {"job",1.5}, {"work",1},
      {"adventure",1.5}, {"reward",1}, {"bounty",1.5} } },
    { "trade", "interested", "gesture_trade", { {"buy",2}, {"sell",2}, {"trade",2}, {"price",1.5},
      {"gold",1}, {"coin",1}, {"coins",1}, {"shop",1.5}, {"wares",1.5}, {"cost",1} } },
    { "combat", "angry", "draw_weapon", { {"fight",2}, {"attack",2}, {"kill",2}, {"die",1.5}, {"sword",1},
      {"duel",2}, {"battle",1.5}, {"threat",1} } },
    { "lore", "thoughtful", "stroke_chin", { {"who",1}, {"what",1}, {"where",1}, {"history",2}, {"legend",2},
      {"story",1.5}, {"king",1}, {"castle",1}, {"town",1}, {"tell",1} } },
    { "help", "concerned", "nod", { {"help",2}, {"lost",1.5}, {"need",1}, {"please",1}, {"hurt",1.5},
      {"heal",1.5}, {"directions",1.5} } },
    { "compliment", "pleased", "smile", { {"thanks",2}, {"thank",2}, {"great",1}, {"nice",1}, {"good",1},
      {"amazing",1.5}, {"kind",1} } },
    { "insult", "offended", "cross_arms", { {"stupid",2}, {"ugly",2}, {"idiot",2}, {"fool",2},
      {"hate",1.5}, {"useless",1.5} } },
};
#define INTENT_COUNT (sizeof s_intents / sizeof s_intents [0])

static const char *s_personalities [] = { "neutral", "friendly", "grumpy", "hostile", "wise", "mysterious" };
#define PERSONALITY_COUNT 6

//  Replies per intent (table order, then "unknown" last) and personality;
//  %s is the NPC's name. Two variants each.
static const char *s_replies [INTENT_COUNT + 1][PERSONALITY_COUNT][2] = {
    { { "Hello, traveler. I am %s.", "Greetings. %s, at your service." },
      { "Well met, friend! I'm %s - good to see a new face!", "Hello there! %s is always glad of company." },
      { "Hmph. %s. What do you want?", "Yes, yes, hello. I'm %s. Get on with it." },
      { "%s does not greet strangers. State your business.", "Keep your distance. %s is watching you." },
      { "Greetings, seeker. %s has been expecting you.", "Welcome. %s greets all who walk with open eyes." },
      { "Ah... %s knew you would come.", "Hello, or is it goodbye? %s cannot tell yet." } },
    { { "Safe travels.", "Farewell." },
      { "Come back soon, friend!", "Take care out there!" },
      { "Finally.", "Don't let the door hit you." },
      { "Leave, and do not return.", "Go, before I change my mind." },
      { "May your road be wise.", "Every ending is a beginning. Farewell." },
      { "We will meet again... sooner than you think.", "The shadows will guide you home." } },
    { { "There is work to be had: bandits trouble the north road.", "The guild posts jobs on the board by the well." },
      { "Oh, a quest! Wolves have been stealing sheep - would you help?", "I know just the adventure for you!" },
      { "Work? Clear the rats from my cellar and we'll talk.", "Fine. Fetch my hammer from the smithy. Quickly." },
      { "Prove yourself first. Bring me a troll's tooth.", "I give tasks to those I trust. You are not one." },
      { "Seek the old shrine beyond the river; your answer waits there.", "A true quest finds the one ready for it." },
      { "Find the lantern that burns without oil...", "Three doors, one key. The quest chooses you." } },
    { { "I have goods, if you have gold.", "Prices are fair. Take a look." },
      { "For you, friend, a special price!", "Browse as long as you like!" },
      { "Buy something or move along.", "Prices are what they are. Don't haggle." },
      { "I don't trade with your kind.", "My wares are not for you." },
      { "Value is in the eye of the buyer.", "I trade in knowledge more than coin." },
      { "What I sell cannot be bought with gold alone...", "Some wares find their owners." } },
    { { "I'd rather not fight, but I will defend myself.", "Put that away before someone gets hurt." },
      { "Whoa, easy! There's no need for violence!", "Friends don't fight, do they?" },
      { "You want a fight? You'll get one.", "Try it and see what happens." },
      { "At last, a worthy opponent! Draw!", "You will regret those words." },
      { "The wise warrior wins without fighting.", "Violence is the last refuge. Think again." },
      { "You cannot strike what you cannot see...", "Steel will not help you here." } },
    { { "This town was built on the ruins of an older one.", "The old king's castle still stands on the hill." },
      { "Oh, I love a good story! Sit, let me tell you of the founding!", "Legend says a dragon sleeps under the lake!" },
      { "History? Ask the librarian. I'm busy.", "Old stories, old nonsense." },
      { "Knowledge has a price you cannot pay.", "Ask too many questions and you'll vanish like the last one." },
      { "The past is a river; we all drink from it.", "The legends are truer than the histories." },
      { "Some stories are better left untold...", "The stars remember what men forget." } },
    { { "The healer lives by the east gate.", "Follow the main road; you cannot miss the inn." },
      { "Of course I'll help! What do you need?", "Don't worry, we'll sort this out together." },
      { "Help yourself. That's what I do.", "Fine. The inn is that way. Now leave me be." },
      { "Why would I help you?", "Help is earned, not begged." },
      { "The help you seek is already within you.", "Ask the right question and the path appears." },
      { "Follow the blue lights... if you dare.", "Help comes to those who stop looking for it." } },
    { { "Thank you kindly.", "That's good of you to say." },
      { "Aw, you're too kind!", "That made my day!" },
      { "Flattery won't get you a discount.", "Hmph. Thanks, I suppose." },
      { "Save your sweet words.", "I don't need your praise." },
      { "Kindness is a rare coin. Thank you.", "Gratitude is the beginning of wisdom." },
      { "How curious... you mean it.", "The words are kind; the eyes say more." } },
    { { "There's no need for that.", "Mind your tongue." },
      { "Oh... that wasn't very nice.", "I'll pretend I didn't hear that." },
      { "Same to you!", "Get out of my sight." },
      { "Say that again. I dare you.", "You'll pay for that insult." },
      { "Anger is a poor teacher.", "Your words say more about you than me." },
      { "Careful. Words have power here...", "I will remember that." } },
    { { "I'm not sure what you mean.", "Hm? Say that again?" },
      { "Sorry, friend, I didn't catch that!", "Could you say that another way?" },
      { "Speak plainly or not at all.", "What? Make sense." },
      { "Your words mean nothing to me.", "Stop wasting my time." },
      { "Not every question has an answer yet.", "Think on it, and ask again." },
      { "Riddles, riddles...", "Perhaps the answer will find you." } },
};

//  Adds the scores of the words of text to score[] with a factor
static void
s_score (const char *text, size_t len, double factor, double *score)
{
    size_t k = 0;
    while (k < len) {
        while (k < len && !isalpha ((unsigned char) text [k]))
            k++;
        char word [32];
        size_t n = 0;
        while (k < len && isalpha ((unsigned char) text [k])) {
            if (n < sizeof word - 1)
                word [n++] = (char) tolower ((unsigned char) text [k]);
            k++;
        }
        word [n] = 0;
        if (n == 0)
            continue;
        for (size_t i = 0; i < INTENT_COUNT; i++)
            for (const keyword_t *kw = s_intents [i].keywords; kw->word; kw++)
                if (!strcmp (kw->word, word))
                    score [i] += kw->weight * factor;
    }
}

//  Adds 2 to score[i] for every word of text that names intent i (its
//  category, or that word with an 's', e.g. "greeting(s)", "quests")
static void
s_score_names (const char *text, size_t len, double *score)
{
    size_t k = 0;
    while (k < len) {
        while (k < len && !isalpha ((unsigned char) text [k]))
            k++;
        char word [32];
        size_t n = 0;
        while (k < len && isalpha ((unsigned char) text [k])) {
            if (n < sizeof word - 1)
                word [n++] = (char) tolower ((unsigned char) text [k]);
            k++;
        }
        word [n] = 0;
        if (n > 1 && word [n - 1] == 's')
            word [n - 1] = 0;
        for (size_t i = 0; n && i < INTENT_COUNT; i++)
            if (!strcmp (s_intents [i].category, word))
                score [i] += 2;
    }
}

//  FNV-1a, for choosing a reply variant
static uint32_t
s_fnv1a (const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < len; k++) {
        h ^= (uint8_t) s [k];
        h *= 16777619u;
    }
    return h;
}

int
k_dialogue_run (const json_t *params, const uint8_t *payload, size_t payload_len,
                agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;

    double score [INTENT_COUNT] = { 0 };
    bool spoken = v [P_INPUT].given;
    if (spoken) {
        s_score (v [P_INPUT].s, v [P_INPUT].slen, 1.0, score);
        s_score (v [P_CONTEXT].s, v [P_CONTEXT].slen, 0.5, score);
    }
    else {
        s_score (v [P_CONTEXT].s, v [P_CONTEXT].slen, 1.0, score);
        s_score_names (v [P_CONTEXT].s, v [P_CONTEXT].slen, score);
    }
    size_t best = INTENT_COUNT;
    double best_score = 0, total = 0;
    for (size_t i = 0; i < INTENT_COUNT; i++) {
        total += score [i];
        if (score [i] > best_score) {
            best_score = score [i];
            best = i;
        }
    }
    //  Confidence: the winner's share of all evidence, damped for little
    //  evidence (one weak keyword is not certainty)
    double confidence = best < INTENT_COUNT? best_score / total * (best_score / (best_score + 1.0)): 0.0;

    //  Unknown personalities talk like "neutral": clients invent many labels
    size_t personality = 0;
    for (size_t p = 0; p < PERSONALITY_COUNT; p++)
        if (!strcasecmp (s_personalities [p], v [P_PERSONALITY].s))
            personality = p;
    size_t variant = spoken ? s_fnv1a (v [P_INPUT].s, v [P_INPUT].slen) % 2
                            : s_fnv1a (v [P_CONTEXT].s, v [P_CONTEXT].slen) % 2;
    const char *name = v [P_NAME].slen? v [P_NAME].s: "Guard";
    char dialogue [512];
    snprintf (dialogue, sizeof dialogue, s_replies [best][personality][variant], name);

    const char *category = best < INTENT_COUNT? s_intents [best].category: "unknown";
    const char *emotion = best < INTENT_COUNT? s_intents [best].emotion: "neutral";
    const char *animation = best < INTENT_COUNT? s_intents [best].animation: "idle";
    out->result = json_pack ("{s:s, s:s, s:o, s:s, s:s, s:s, s:s}",
                             "dialogue", dialogue, "category", category,
                             "confidence", agt_num (confidence), "emotion", emotion,
                             "animation", animation, "npc_name", name,
                             "personality", s_personalities [personality]);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
